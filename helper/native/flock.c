/* tryLockExclusive(fd) -> boolean: flock(fd, LOCK_EX | LOCK_NB). true when the lock is ours,
 * false when another process holds it; the lock goes with the fd (close it to release), and the
 * kernel releases it if the process dies. xkvm-helper uses it so that the max-taps count and
 * the creation of taps are one step across every helper process on the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/file.h>
#include <node_api.h>
#include "fd-arg.h"

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

napi_value try_lock_exclusive(napi_env env, napi_callback_info info) {
  napi_value out;
  int fd;
  if (!read_fd_arg(env, info, "tryLockExclusive", &fd)) return NULL;
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EWOULDBLOCK) {
    napi_throw_error(env, "EFLOCK", strerror(errno));
    return NULL;
  }
  CHECK(napi_get_boolean(env, rc == 0, &out));
  return out;
}
