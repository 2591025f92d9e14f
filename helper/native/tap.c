/* openTap(name, queues, uid) -> {name, fds}: a tap opened by the helper itself, for fd handoff.
 * TUNSETIFF with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR (plus IFF_MULTI_QUEUE when queues > 1: the same
 * name opened `queues` times), TUNSETOWNER to `uid`, never TUNSETPERSIST: the kernel removes the
 * device when the last of its fds is closed. `name` is an interface name, or a template with one
 * "%d" that the kernel fills in; the actual name is returned. Every fd is O_CLOEXEC. On any
 * failure the fds opened so far are closed (so the device is gone) and an Error is thrown whose
 * .code is the errno's name (EBUSY: a device of that name exists already: IFF_TUN_EXCL, so an
 * existing tap is never joined; EPERM: not root). Needs CAP_NET_ADMIN. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <node_api.h>
#include "fdpass.h"

#define MAX_QUEUES 256

static void close_all(const int *fds, int n) {
  for (int i = 0; i < n; i++) close(fds[i]);
}

napi_value open_tap(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out, list, item, actual;
  napi_valuetype type;
  char name[IFNAMSIZ + 1];
  size_t name_len;
  int queues, uid, fds[MAX_QUEUES], n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "openTap: expected a name, a number of queues and a uid");
    return NULL;
  }
  if (napi_typeof(env, argv[0], &type) != napi_ok) return NULL;
  if (type != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "openTap: the name must be a string");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok) return NULL;
  if (name_len == 0 || name_len >= IFNAMSIZ || strlen(name) != name_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "openTap: the name must be 1 to 15 bytes, without NUL");
    return NULL;
  }
  if (!xkvm_read_int(env, argv[1], "openTap", "queues", 1, &queues)
    || !xkvm_read_int(env, argv[2], "openTap", "the uid", 0, &uid)) return NULL;
  if (queues > MAX_QUEUES) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "openTap: at most 256 queues");
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, name_len);
  const short flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (queues > 1 ? IFF_MULTI_QUEUE : 0);
  /* IFF_TUN_EXCL on the first open: a device of that name that already exists (someone's
   * persistent tap, or a multi-queue tap in use) is EBUSY, never joined. */
  ifr.ifr_flags = flags | IFF_TUN_EXCL;
  for (n = 0; n < queues; ) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      close_all(fds, n);
      return xkvm_throw_errno(env, "openTap", "open /dev/net/tun", e);
    }
    fds[n++] = fd;
    /* The first TUNSETIFF may fill in a template; the other queues attach to the actual name. */
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
      int e = errno;
      close_all(fds, n);
      return xkvm_throw_errno(env, "openTap", "TUNSETIFF", e);
    }
    if (n == 1 && ioctl(fd, TUNSETOWNER, (unsigned long)uid) != 0) {
      int e = errno;
      close_all(fds, n);
      return xkvm_throw_errno(env, "openTap", "TUNSETOWNER", e);
    }
    ifr.ifr_flags = flags;
  }
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  if (napi_create_object(env, &out) != napi_ok || napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &actual) != napi_ok
    || napi_set_named_property(env, out, "name", actual) != napi_ok || napi_create_array_with_length(env, (size_t)n, &list) != napi_ok) {
    close_all(fds, n);
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    if (napi_create_int32(env, fds[i], &item) != napi_ok || napi_set_element(env, list, (uint32_t)i, item) != napi_ok) {
      close_all(fds, n);
      return NULL;
    }
  }
  if (napi_set_named_property(env, out, "fds", list) != napi_ok) {
    close_all(fds, n);
    return NULL;
  }
  return out;
}
