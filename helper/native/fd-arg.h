/* The one argument of the addon's functions: a file descriptor, checked strictly. */
#ifndef XKVM_FD_ARG_H
#define XKVM_FD_ARG_H
#include <node_api.h>

/* Reads exactly one argument, a whole number from 0 to INT_MAX, into *fd. On a bad argument it
 * throws a TypeError or RangeError naming `fn` and returns 0; on success it returns 1. */
int read_fd_arg(napi_env env, napi_callback_info info, const char *fn, int *fd);

#endif
