/* fdpass.node: the client's addon (xkvm and xkvm-bridge-helper, unprivileged): only fd passing
 * (fdpass.c), nothing that needs root. */
#include <node_api.h>
#include "fdpass.h"

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  if (!xkvm_export_fdpass(env, exports)) return NULL;
  return exports;
}
