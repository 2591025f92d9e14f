/* sendDatagram(path, data): one datagram on a Unix socket of that path, without waiting: the
 * journal's native socket (/run/systemd/journal/socket) or syslog's (/dev/log). Node has no Unix
 * datagram sockets. Throws an Error whose .code is the errno's name (ENOENT: nobody listens
 * there; EAGAIN: the listener's queue is full; ...). */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <node_api.h>

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

static napi_value throw_errno(napi_env env, const char *path, int e) {
  char msg[200 + sizeof ((struct sockaddr_un *)0)->sun_path];
  napi_value code, text, err;
  const char *name = strerrorname_np(e);
  snprintf(msg, sizeof msg, "sendDatagram %s: %s", path, strerror(e));
  CHECK(napi_create_string_utf8(env, name != NULL ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code));
  CHECK(napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text));
  CHECK(napi_create_error(env, code, text, &err));
  napi_throw(env, err);
  return NULL;
}

napi_value send_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_valuetype type;
  bool is_buffer;
  struct sockaddr_un addr;
  size_t path_len;
  void *data;
  size_t length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sendDatagram: expected two arguments, a path and a Buffer");
    return NULL;
  }
  CHECK(napi_typeof(env, argv[0], &type));
  CHECK(napi_is_buffer(env, argv[1], &is_buffer));
  if (type != napi_string || !is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sendDatagram: expected a path (string) and a Buffer");
    return NULL;
  }
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  /* One byte more than sun_path holds: a path that fills it is too long (it needs its NUL). */
  char path[sizeof addr.sun_path + 1];
  CHECK(napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_len));
  if (path_len == 0 || path_len >= sizeof addr.sun_path || strlen(path) != path_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "sendDatagram: the path must be 1 to 107 bytes, without NUL");
    return NULL;
  }
  memcpy(addr.sun_path, path, path_len + 1);
  CHECK(napi_get_buffer_info(env, argv[1], &data, &length));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, path, errno);
  ssize_t sent;
  do {
    sent = sendto(fd, data, length, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&addr,
      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + 1));
  } while (sent < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  if (sent < 0) return throw_errno(env, path, e);
  return NULL;
}
