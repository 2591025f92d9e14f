/* fdpass.node: the client's addon (xkvm and xkvm-bridge-helper, unprivileged): fd passing
 * (fdpass.c), plus two calls only the client side needs, nothing that needs root:
 *
 *   connectUnix(path, timeoutMs) -> fd
 *       A connected AF_UNIX SOCK_STREAM socket, O_CLOEXEC, not wrapped in anything: the client's
 *       fd-handoff connection to the helper's socket (a net.Socket would read the bytes and
 *       drop the fds that come with them). Waits at most timeoutMs for room in the listen
 *       backlog (SO_SNDTIMEO; EAGAIN after it). Throws Error with .code = errno name.
 *   socketType(fd) -> { domain, type }
 *       getsockopt(SO_DOMAIN) and (SO_TYPE) of fd: xkvm-bridge-helper checks that qemu's
 *       --fd=N is a Unix stream socket. Throws ENOTSOCK for another kind of fd, EBADF for none.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <node_api.h>
#include "fdpass.h"

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

static napi_value connect_unix(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char path[sizeof ((struct sockaddr_un *)0)->sun_path + 1];
  size_t length;
  int timeout_ms;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "connectUnix: expected a path and timeoutMs");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "connectUnix: the path must be a string");
    return NULL;
  }
  if (!xkvm_read_int(env, argv[1], "connectUnix", "timeoutMs", 1, &timeout_ms)) return NULL;
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (length == 0 || length >= sizeof addr.sun_path || strlen(path) != length) {
    return xkvm_throw_errno(env, "connectUnix", "the socket path is empty, too long or contains NUL", ENAMETOOLONG);
  }
  memcpy(addr.sun_path, path, length);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return xkvm_throw_errno(env, "connectUnix", "socket", errno);
  struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
  struct timeval none = { 0, 0 };
  int r;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) r = -1;
  else {
    do r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    while (r < 0 && errno == EINTR);
  }
  if (r == 0 && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none) != 0) r = -1;
  if (r != 0) {
    int e = errno;
    close(fd);
    return xkvm_throw_errno(env, "connectUnix", "connect", e);
  }
  napi_value out;
  if (napi_create_int32(env, fd, &out) != napi_ok) {
    close(fd);
    return NULL;
  }
  return out;
}

static napi_value socket_type(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out, domain_value, type_value;
  int fd, domain, type;
  socklen_t size = sizeof domain;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "socketType: expected an fd");
    return NULL;
  }
  if (!xkvm_read_int(env, argv[0], "socketType", "the fd", 0, &fd)) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) != 0) return xkvm_throw_errno(env, "socketType", "getsockopt(SO_DOMAIN)", errno);
  size = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0) return xkvm_throw_errno(env, "socketType", "getsockopt(SO_TYPE)", errno);
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_string_utf8(env, domain == AF_UNIX ? "unix" : "other", NAPI_AUTO_LENGTH, &domain_value));
  CHECK(napi_create_string_utf8(env, type == SOCK_STREAM ? "stream" : "other", NAPI_AUTO_LENGTH, &type_value));
  CHECK(napi_set_named_property(env, out, "domain", domain_value));
  CHECK(napi_set_named_property(env, out, "type", type_value));
  return out;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  static const struct { const char *name; napi_callback cb; } fns[] = {
    { "connectUnix", connect_unix }, { "socketType", socket_type },
  };
  if (!xkvm_export_fdpass(env, exports)) return NULL;
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok) return NULL;
  }
  return exports;
}
