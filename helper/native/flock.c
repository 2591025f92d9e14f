/* tryLockExclusive(fd) -> boolean: flock(fd, LOCK_EX | LOCK_NB). true when the lock is ours,
 * false when another process holds it; the lock goes with the fd (close it to release), and the
 * kernel releases it if the process dies. xkvm-helper uses it so that the max-taps count and
 * the creation of taps are one step across every helper process on the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <node_api.h>

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

napi_value try_lock_exclusive(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  napi_valuetype type;
  double d;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "tryLockExclusive: expected exactly one argument, a file descriptor");
    return NULL;
  }
  CHECK(napi_typeof(env, argv[0], &type));
  if (type != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "tryLockExclusive: the file descriptor must be a number");
    return NULL;
  }
  CHECK(napi_get_value_double(env, argv[0], &d));
  if (!(d >= 0 && d <= INT_MAX) || d != (double)(int)d) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "tryLockExclusive: the file descriptor must be an integer from 0 to 2147483647");
    return NULL;
  }
  int rc;
  do {
    rc = flock((int)d, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EWOULDBLOCK) {
    napi_throw_error(env, "EFLOCK", strerror(errno));
    return NULL;
  }
  CHECK(napi_get_boolean(env, rc == 0, &out));
  return out;
}
