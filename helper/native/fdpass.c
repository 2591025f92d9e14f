/* Passing file descriptors over connected Unix stream sockets (SCM_RIGHTS), which Node cannot do:
 * the helper sends tap fds with its reply; the client and xkvm-bridge-helper receive them and pass
 * them on. Compiled into both addons (peercred.node for the helper, fdpass.node for the client).
 *
 *   sendFds(fd, data: Buffer, fds: number[]) -> bytes sent
 *       One sendmsg(MSG_DONTWAIT|MSG_NOSIGNAL), the fds as SCM_RIGHTS on the first byte. Returns
 *       0 when the socket's buffer is full (EAGAIN: nothing sent, the fds have not travelled);
 *       n < data.length on a partial write (the fds HAVE travelled, with the first byte: the
 *       rest must be sent without them). Throws Error with .code = errno name otherwise.
 *   recvFds(fd, maxBytes, maxFds, timeoutMs) -> Promise<{data: Buffer, fds: number[]}>
 *       On a worker thread: poll() for input up to timeoutMs (-1: no limit), then one
 *       recvmsg(MSG_CMSG_CLOEXEC|MSG_DONTWAIT): the fds come O_CLOEXEC. data is empty at end of
 *       stream. Rejects (closing whatever fds came) when the control data was truncated
 *       (EMSGSIZE: more fds than maxFds), on timeout (ETIMEDOUT) and on errors.
 *   socketPair() -> [a, b]: a connected AF_UNIX SOCK_STREAM pair, both O_CLOEXEC.
 *   setCloexec(fd, on: boolean): set or clear FD_CLOEXEC (to hand one fd to a child on purpose).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>
#include "fdpass.h"

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)
/* At most this many fds in one message (the kernel's SCM_MAX_FD is 253). */
#define MAX_FDS 253

static napi_value make_errno_error(napi_env env, const char *fn, const char *what, int e) {
  char msg[256];
  napi_value code, text, err, num;
  const char *name = strerrorname_np(e);
  snprintf(msg, sizeof msg, "%s: %s: %s", fn, what, strerror(e));
  if (napi_create_string_utf8(env, name != NULL ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok) return NULL;
  if (napi_create_error(env, code, text, &err) != napi_ok) return NULL;
  if (napi_create_int32(env, e, &num) != napi_ok) return NULL;
  if (napi_set_named_property(env, err, "errno", num) != napi_ok) return NULL;
  return err;
}

napi_value xkvm_throw_errno(napi_env env, const char *fn, const char *what, int e) {
  napi_value err = make_errno_error(env, fn, what, e);
  if (err != NULL) napi_throw(env, err);
  return NULL;
}

/* A whole number from `min` to INT_MAX in `value`, else a thrown RangeError/TypeError and 0. */
int xkvm_read_int(napi_env env, napi_value value, const char *fn, const char *what, int min, int *out) {
  napi_valuetype type;
  double d;
  char message[200];
  if (napi_typeof(env, value, &type) != napi_ok) return 0;
  if (type != napi_number) {
    snprintf(message, sizeof message, "%s: %s must be a number", fn, what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  if (napi_get_value_double(env, value, &d) != napi_ok) return 0;
  if (!(d >= min && d <= INT_MAX) || d != (double)(int)d) {
    snprintf(message, sizeof message, "%s: %s must be an integer from %d to 2147483647", fn, what, min);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return 0;
  }
  *out = (int)d;
  return 1;
}

static napi_value send_fds(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  bool is_buffer, is_array;
  uint32_t count;
  int sock, fds[MAX_FDS];
  void *data;
  size_t length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sendFds: expected three arguments: a socket fd, a Buffer, an array of fds");
    return NULL;
  }
  if (!xkvm_read_int(env, argv[0], "sendFds", "the socket fd", 0, &sock)) return NULL;
  CHECK(napi_is_buffer(env, argv[1], &is_buffer));
  CHECK(napi_is_array(env, argv[2], &is_array));
  if (!is_buffer || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sendFds: expected a Buffer and an array of fds");
    return NULL;
  }
  CHECK(napi_get_buffer_info(env, argv[1], &data, &length));
  CHECK(napi_get_array_length(env, argv[2], &count));
  if (length == 0 || count > MAX_FDS) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "sendFds: the data must not be empty (the fds travel with its first byte), and at most 253 fds");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    CHECK(napi_get_element(env, argv[2], i, &item));
    if (!xkvm_read_int(env, item, "sendFds", "each fd", 0, &fds[i])) return NULL;
  }
  struct iovec iov = { .iov_base = data, .iov_len = length };
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  union { char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)]; struct cmsghdr align; } control;
  if (count > 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);
  }
  ssize_t sent;
  do sent = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) sent = 0;
  if (sent < 0) return xkvm_throw_errno(env, "sendFds", "sendmsg", errno);
  napi_value out;
  CHECK(napi_create_int64(env, (int64_t)sent, &out));
  return out;
}

struct recv_job {
  napi_async_work work;
  napi_deferred deferred;
  int sock, max_bytes, max_fds, timeout_ms;
  char *data;
  ssize_t got;
  int fds[MAX_FDS];
  int nfds;
  int error;         /* errno, or 0 */
  const char *what;  /* which call failed */
};

static void recv_execute(napi_env env, void *arg) {
  (void)env;
  struct recv_job *job = arg;
  struct pollfd p = { .fd = job->sock, .events = POLLIN };
  int r;
  do r = poll(&p, 1, job->timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r < 0) { job->error = errno; job->what = "poll"; return; }
  if (r == 0) { job->error = ETIMEDOUT; job->what = "nothing arrived in time"; return; }
  struct iovec iov = { .iov_base = job->data, .iov_len = (size_t)job->max_bytes };
  union { char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)]; struct cmsghdr align; } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  memset(&control, 0, sizeof control);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)job->max_fds);
  ssize_t got;
  do got = recvmsg(job->sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (got < 0 && errno == EINTR);
  if (got < 0) { job->error = errno; job->what = "recvmsg"; return; }
  job->got = got;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (job->nfds < MAX_FDS) job->fds[job->nfds++] = fd;
      else close(fd);
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) || job->nfds > job->max_fds) {
    for (int i = 0; i < job->nfds; i++) close(job->fds[i]);
    job->nfds = 0;
    job->error = EMSGSIZE;
    job->what = "more file descriptors came than expected (the extra ones were discarded by the kernel; the others are closed)";
  }
}

static void recv_complete(napi_env env, napi_status status, void *arg) {
  struct recv_job *job = arg;
  napi_value result = NULL, buffer, list, item;
  if (status != napi_ok) {
    job->error = ECANCELED;
    job->what = "cancelled";
    for (int i = 0; i < job->nfds; i++) close(job->fds[i]);
    job->nfds = 0;
  }
  if (job->error != 0) {
    napi_value err = make_errno_error(env, "recvFds", job->what, job->error);
    if (err != NULL) napi_reject_deferred(env, job->deferred, err);
  } else {
    void *copy;
    bool ok = napi_create_object(env, &result) == napi_ok
      && napi_create_buffer_copy(env, (size_t)job->got, job->data, &copy, &buffer) == napi_ok
      && napi_set_named_property(env, result, "data", buffer) == napi_ok
      && napi_create_array_with_length(env, (size_t)job->nfds, &list) == napi_ok;
    for (int i = 0; ok && i < job->nfds; i++) {
      ok = napi_create_int32(env, job->fds[i], &item) == napi_ok && napi_set_element(env, list, (uint32_t)i, item) == napi_ok;
    }
    ok = ok && napi_set_named_property(env, result, "fds", list) == napi_ok;
    if (ok) napi_resolve_deferred(env, job->deferred, result);
    else {
      for (int i = 0; i < job->nfds; i++) close(job->fds[i]);
      napi_value err = make_errno_error(env, "recvFds", "out of memory building the result", ENOMEM);
      if (err != NULL) napi_reject_deferred(env, job->deferred, err);
    }
  }
  napi_delete_async_work(env, job->work);
  free(job->data);
  free(job);
}

static napi_value recv_fds(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], name, promise;
  int sock, max_bytes, max_fds, timeout_ms;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "recvFds: expected a socket fd, maxBytes, maxFds, timeoutMs");
    return NULL;
  }
  if (!xkvm_read_int(env, argv[0], "recvFds", "the socket fd", 0, &sock)
    || !xkvm_read_int(env, argv[1], "recvFds", "maxBytes", 1, &max_bytes)
    || !xkvm_read_int(env, argv[2], "recvFds", "maxFds", 0, &max_fds)
    || !xkvm_read_int(env, argv[3], "recvFds", "timeoutMs", -1, &timeout_ms)) return NULL;
  if (max_fds > MAX_FDS || max_bytes > (1 << 24)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "recvFds: at most 253 fds and 16 MiB at once");
    return NULL;
  }
  struct recv_job *job = calloc(1, sizeof *job);
  if (job == NULL) return xkvm_throw_errno(env, "recvFds", "calloc", ENOMEM);
  job->data = malloc((size_t)max_bytes);
  if (job->data == NULL) { free(job); return xkvm_throw_errno(env, "recvFds", "malloc", ENOMEM); }
  job->sock = sock;
  job->max_bytes = max_bytes;
  job->max_fds = max_fds;
  job->timeout_ms = timeout_ms;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok
    || napi_create_string_utf8(env, "xkvm.recvFds", NAPI_AUTO_LENGTH, &name) != napi_ok
    || napi_create_async_work(env, NULL, name, recv_execute, recv_complete, job, &job->work) != napi_ok
    || napi_queue_async_work(env, job->work) != napi_ok) {
    free(job->data);
    free(job);
    return NULL;
  }
  return promise;
}

static napi_value socket_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  napi_value out, a, b;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return xkvm_throw_errno(env, "socketPair", "socketpair", errno);
  if (napi_create_array_with_length(env, 2, &out) != napi_ok || napi_create_int32(env, sv[0], &a) != napi_ok
    || napi_create_int32(env, sv[1], &b) != napi_ok || napi_set_element(env, out, 0, a) != napi_ok
    || napi_set_element(env, out, 1, b) != napi_ok) {
    close(sv[0]);
    close(sv[1]);
    return NULL;
  }
  return out;
}

static napi_value set_cloexec(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int fd;
  bool on;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setCloexec: expected an fd and a boolean");
    return NULL;
  }
  if (!xkvm_read_int(env, argv[0], "setCloexec", "the fd", 0, &fd)) return NULL;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setCloexec: the second argument must be a boolean");
    return NULL;
  }
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return xkvm_throw_errno(env, "setCloexec", "fcntl(F_GETFD)", errno);
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (fcntl(fd, F_SETFD, flags) != 0) return xkvm_throw_errno(env, "setCloexec", "fcntl(F_SETFD)", errno);
  return NULL;
}

int xkvm_export_fdpass(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback cb; } fns[] = {
    { "sendFds", send_fds }, { "recvFds", recv_fds }, { "socketPair", socket_pair }, { "setCloexec", set_cloexec },
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn) != napi_ok) return 0;
    if (napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok) return 0;
  }
  return 1;
}
