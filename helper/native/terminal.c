/* leaveTerminal() -> "session" | "group-leader": under pkexec the helper runs in its caller's
 * terminal session, in the caller's foreground job, so the terminal's job control (^Z, ^C, ^\,
 * a background read or write) would reach it, and a stopped root helper serves nobody. This
 * ignores SIGTSTP, SIGTTIN, SIGTTOU, SIGINT and SIGQUIT, then leaves the session with setsid():
 * no terminal can signal the helper or its children after that ("session"). setsid() fails for a
 * process group leader (pkexec run as a job of an interactive shell): the helper then stays in
 * its job ("group-leader"), ignoring those signals itself; the caller decides what more to do. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

static const int IGNORED[] = { SIGTSTP, SIGTTIN, SIGTTOU, SIGINT, SIGQUIT };

napi_value leave_terminal(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  CHECK(napi_get_cb_info(env, info, &argc, NULL, NULL, NULL));
  if (argc != 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "leaveTerminal: expected no arguments");
    return NULL;
  }
  struct sigaction ignore;
  memset(&ignore, 0, sizeof ignore);
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  for (size_t i = 0; i < sizeof IGNORED / sizeof IGNORED[0]; i++) {
    if (sigaction(IGNORED[i], &ignore, NULL) != 0) {
      napi_throw_error(env, "ESIGACTION", strerror(errno));
      return NULL;
    }
  }
  const char *how;
  if (setsid() >= 0) {
    how = "session";
  } else if (errno == EPERM) {
    how = "group-leader";
  } else {
    napi_throw_error(env, "ESETSID", strerror(errno));
    return NULL;
  }
  CHECK(napi_create_string_utf8(env, how, NAPI_AUTO_LENGTH, &out));
  return out;
}
