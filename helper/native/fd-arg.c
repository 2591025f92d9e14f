#include <limits.h>
#include <stdio.h>
#include "fd-arg.h"

int read_fd_arg(napi_env env, napi_callback_info info, const char *fn, int *fd) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype type;
  double d;
  char message[160];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc != 1) {
    snprintf(message, sizeof message, "%s: expected exactly one argument, a file descriptor", fn);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  if (napi_typeof(env, argv[0], &type) != napi_ok) return 0;
  if (type != napi_number) {
    snprintf(message, sizeof message, "%s: the file descriptor must be a number", fn);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  if (napi_get_value_double(env, argv[0], &d) != napi_ok) return 0;
  if (!(d >= 0 && d <= INT_MAX) || d != (double)(int)d) {
    snprintf(message, sizeof message, "%s: the file descriptor must be an integer from 0 to 2147483647", fn);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return 0;
  }
  *fd = (int)d;
  return 1;
}
