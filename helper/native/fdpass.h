/* Shared by both addons: fd passing (fdpass.c) and the helpers its neighbours use. */
#ifndef XKVM_FDPASS_H
#define XKVM_FDPASS_H
#include <node_api.h>

/* Throws Error("FN: WHAT: strerror") with .code = errno name and .errno; returns NULL. */
napi_value xkvm_throw_errno(napi_env env, const char *fn, const char *what, int e);
/* Reads a whole number from `min` to INT_MAX; on a bad value throws (naming fn and what) and returns 0. */
int xkvm_read_int(napi_env env, napi_value value, const char *fn, const char *what, int min, int *out);
/* Adds sendFds, recvFds, socketPair, setCloexec to `exports`; 0 on failure (an exception is pending). */
int xkvm_export_fdpass(napi_env env, napi_value exports);

#endif
