/* peerCred(fd) -> {pid, uid, gid}: the kernel's SO_PEERCRED for a connected Unix socket.
 * Node has no API for it; xkvm-helper uses it to learn who is on the other end. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <node_api.h>
#include "fd-arg.h"
#include "fdpass.h"

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

static const char *errno_code(int e) {
  switch (e) {
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOTCONN: return "ENOTCONN";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    default: return "EUNKNOWN";
  }
}

/* Throws Error(message) with .code = "E..." and .errno = e; returns NULL for the caller. */
static napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  napi_value code, text, err, num;
  snprintf(msg, sizeof msg, "peerCred: %s: %s", what, strerror(e));
  CHECK(napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &code));
  CHECK(napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text));
  CHECK(napi_create_error(env, code, text, &err));
  CHECK(napi_create_int32(env, e, &num));
  CHECK(napi_set_named_property(env, err, "errno", num));
  napi_throw(env, err);
  return NULL;
}

static napi_value set_u32(napi_env env, napi_value obj, const char *key, uint32_t v) {
  napi_value n;
  CHECK(napi_create_uint32(env, v, &n));
  CHECK(napi_set_named_property(env, obj, key, n));
  return obj;
}

static napi_value peer_cred(napi_env env, napi_callback_info info) {
  napi_value out;
  int fd, domain = 0;
  if (!read_fd_arg(env, info, "peerCred", &fd)) return NULL;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return throw_errno(env, "getsockopt(SO_DOMAIN)", errno);
  if (domain != AF_UNIX) return throw_errno(env, "not a Unix-domain socket", EAFNOSUPPORT);
  struct ucred cred;
  len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
  /* An unconnected socket reports pid 0 and uid/gid -1: that identifies no one. */
  if (len != sizeof cred || cred.pid <= 0 || cred.uid == (uid_t)-1 || cred.gid == (gid_t)-1)
    return throw_errno(env, "the socket has no peer credentials", ENOTCONN);
  CHECK(napi_create_object(env, &out));
  if (!set_u32(env, out, "pid", (uint32_t)cred.pid) || !set_u32(env, out, "uid", cred.uid) || !set_u32(env, out, "gid", cred.gid))
    return NULL;
  return out;
}

napi_value try_lock_exclusive(napi_env env, napi_callback_info info); /* flock.c */
napi_value leave_terminal(napi_env env, napi_callback_info info); /* terminal.c */
napi_value send_datagram(napi_env env, napi_callback_info info); /* datagram.c */
napi_value open_tap(napi_env env, napi_callback_info info); /* tap.c */

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  CHECK(napi_create_function(env, "tryLockExclusive", NAPI_AUTO_LENGTH, try_lock_exclusive, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "tryLockExclusive", fn));
  CHECK(napi_create_function(env, "peerCred", NAPI_AUTO_LENGTH, peer_cred, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "peerCred", fn));
  CHECK(napi_create_function(env, "leaveTerminal", NAPI_AUTO_LENGTH, leave_terminal, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "leaveTerminal", fn));
  CHECK(napi_create_function(env, "sendDatagram", NAPI_AUTO_LENGTH, send_datagram, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "sendDatagram", fn));
  CHECK(napi_create_function(env, "openTap", NAPI_AUTO_LENGTH, open_tap, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "openTap", fn));
  if (!xkvm_export_fdpass(env, exports)) return NULL;
  return exports;
}
