#!/usr/bin/env node
/**
 * xkvm-helper: the only privileged part of xkvm.
 *
 * Theory of operation
 * -------------------
 * Trust boundary. This program runs as root on behalf of unprivileged strangers. Everything that
 * arrives on its socket or stdin is hostile until validated; under pkexec so are its arguments
 * and environment (pkexec checks neither). It does exactly two things, make-nics and
 * ovs-cleanup, described by a msgpack schema defined once in shared/src/protocol.
 *
 * Identity. The caller is whoever the kernel says: SO_PEERCRED on the Unix socket (a small
 * N-API addon, helper/native), or, under pkexec, PKEXEC_UID checked against our parent
 * process. Never a uid, name or pid sent in a request. Group membership comes from the user
 * database. Sessions are keyed by the client's pid and start time, so a reused pid cannot
 * inherit them.
 *
 * Under pkexec the helper is its caller's child, in the caller's terminal session and job. Before
 * anything else it leaves the terminal's job control (cli/job-control.ts): SIGTSTP, SIGTTIN,
 * SIGTTOU, SIGINT and SIGQUIT ignored, then setsid(), so that no ^Z stops a root helper (or its
 * `ip`) in the middle of a request. A helper that leads a process group (pkexec typed as a job of
 * an interactive shell) cannot setsid(): it starts the helper again in a session of its own,
 * hands it the client, and waits in the job. SIGHUP (the terminal hung up) ends the session
 * like the end of stdin: its taps are removed, then the helper exits.
 *
 * Decision. The policy (/etc/xkvm/helper.conf, root-owned, not writable by others) denies by
 * default; deny lines win over allow lines; a caller whom no allow line names is refused
 * ovs-cleanup too, before anything runs. max-taps bounds the taps a user's requests made that
 * still exist, whoever owns them now: an owner can give a tap away (TUNSETOWNER needs no
 * privilege), so the helper keeps a ledger of what it created (records/ledger.ts: name, ifindex,
 * creator, lifetime, session) and counts that, never a device's current owner. Each user's taps
 * are counted, recorded and made under that user's own lock (flock, shared by every helper
 * process), so a helper stopped while holding one (^Z on a pkexec'd helper) blocks only that
 * user. Every request leaves one audit record (the audit-log file if set, and stderr; under
 * systemd, whose journal stream stderr then is, the journal natively instead of stderr text); a
 * pkexec'd helper, whose stderr is its caller's, also sends each record to the system journal
 * (native protocol: a readable MESSAGE, MESSAGE_ID, XKVM_EVENT, XKVM_UID, XKVM_USER, XKVM_BRIDGE,
 * XKVM_TAP...; audit/system-log.ts), or to syslog where there is none. The service as installed
 * (units, socket activation, idle exit, journal fields) runs under a real systemd in
 * test/system/real-systemd.test.ts.
 *
 * Grants on a tap. A make-nics request names its taps as `nics` [{bridge, queues?, mac?}] (or
 * `bridges`, the same without options; shared/src/protocol/validate.ts turns them into nics).
 * Besides allow/deny, the policy may put a user's taps on a bridge in a VLAN (`vlan`), lock them
 * to the request's MAC (`mac-lock`) and bound their queues (`max-queues`, default 8, at most 16);
 * these grant nothing by themselves. The service checks them before anything is made: nics
 * without `mac` under mac-lock are one BAD_REQUEST naming them all with their lines (the form
 * of shared/src/protocol/mac-lock.ts, which the client reads to give its mac=auto nics a MAC
 * and ask again), more queues than max-queues is QUOTA, two VLANs from two of the user's groups
 * DENIED naming both lines. queues > 1 makes a multi_queue
 * tap. A VLAN goes to the network layer with the nic (TapRequest.vlans; net/vlan.ts): an OVS
 * port added with tag=VID; on a Linux bridge with VLAN filtering the tap attached down, the
 * default PVID removed and VID set as its untagged PVID (one `bridge -batch`), then raised; a
 * bridge that does not filter VLANs (or an OVS fake bridge of another VLAN) is refused with
 * SYSTEM_ERROR before anything is made; the reply says `vlan`. Deleting the tap removes all of
 * it. A nic under mac-lock goes to the network layer with its MAC (the reply says `mac`): the
 * tap is attached down, locked, then brought up (a Linux bridge port `locked` with one static
 * FDB entry, by bridge(8); on OVS two cookie-tagged OpenFlow flows on the port, by ovs-ofctl,
 * deleted whenever the port is); a lock that fails fails the request with its taps gone.
 *
 * Fd handoff (`handoff: "fd"`, docs/protocol.md and docs/fd-handoff.md): the network layer opens
 * each tap itself instead of `tuntap add` (native/fd-handoff.ts openTap: vnet header, one fd per
 * queue, IFF_TUN_EXCL so that an existing device is never joined, owned by the caller, not
 * persistent), under a random name recorded as an intent first, as for named taps, then attaches
 * it by the same ip batch (MTU, VLAN, mac-lock as above). The fds stay in the call (net/fdtaps.ts
 * HeldFds) until its outcome carries them; a tap undone before the reply is undone by closing its
 * fds (the kernel removes it) after its OVS port and flows. The ledger records such taps with
 * lifetime "fd": they count for max-taps while they exist and belong to no session, so a
 * connection's end leaves them to qemu. The connection sends the reply with the fds as
 * SCM_RIGHTS on its first byte (sendWithFds, nothing else written meanwhile: one request at a
 * time), then closes the helper's copies, sent or not; over --stdio only when stdout is a Unix
 * socket (a socketpair from xkvm), else BAD_REQUEST saying so. records/fdtaps.ts then watches
 * the taps handed over: while there are any, net/linkwatch.ts runs (a long-lived unref'd
 * `ip -o monitor link`, each "Deleted" line checked against /sys), and a deleted one is forgotten
 * under its user's lock and its OVS port (and flows) removed, within 2 s. The watch never keeps
 * the helper alive; an fd tap that dies while no helper runs is found at the next helper's start
 * (every ledger's fd taps swept) or when a helper settles that user's ledger.
 *
 * What one user may cost the others. Well-formed requests are an attack too, so each user's
 * share is bounded, by the uid the kernel gave at accept (docs/protocol.md, "Connections"):
 * - connections: at most max-connections (policy, default 16) open at once per uid; one more is
 *   refused at once (QUOTA naming the limit, then closed), so no user can take another's slot;
 *   1024 connections in all bound the helper's own resources. A connection that holds no
 *   session taps and sends nothing (or reads none of its replies) for 5 s is closed, so a
 *   socket-activated helper still goes idle; a session holding taps is never closed for that.
 * - refusals: after 8 refused requests in a row a connection is closed; each uid's refusal
 *   records beyond 20 a second are counted by kind and written as one summary record a kind
 *   ("N more refusals ... from uid U in the last T s") when its window closes or the helper
 *   exits (audit/throttle.ts). Records of taps made or removed are never held back, nor root's.
 * - memory: while more than 64 KiB of replies wait for a client to read them, the helper reads
 *   and serves nothing more of that connection.
 *
 * Paths root acts on. The state directory (session records, the ledger and its per-uid locks) and the audit-log's
 * directory must be directories only root can change (owned by root, writable by root alone, not
 * symbolic links, under directories that pass the policy file's check), or the helper refuses to
 * start and names them (exit 4 and 3); a policy reload naming an unsafe audit-log is refused and
 * audited, and the previous file stays in use. The audit-log is appended with O_NOFOLLOW. Each
 * session record read back is checked field by field (pid > 0, a decimal start time, a uid, valid
 * interface names): a bad one is audited and skipped, never trusted and never fatal.
 *
 * What it must never do. Run a shell; run a program by a PATH lookup (tools are absolute, the
 * PATH is fixed); look at an interface name before it passed the name check (1–15 bytes, safe
 * characters, no leading '-'); delete, re-own or attach a device it did not create for that
 * caller (a tap is deleted by the ledger's name and ifindex, whoever owns it now; a device that
 * took that name later has another ifindex and is left alone); "check then create" a name (ip
 * tuntap add refuses an existing name, and that refusal is relied on); honour `--config` or
 * anything else but `--stdio` under pkexec; let one client's bad input disturb another; outlive
 * its purpose (socket mode exits when idle).
 *
 * Programs. ip, ovs-vsctl (OVS bridges), bridge and ovs-ofctl (mac-lock; ovs-ofctl also when
 * OVS ports are removed, to delete their flows) and getent (users and groups that are not in
 * /etc/passwd and /etc/group), by absolute path, with the fixed environment of defaults.ts
 * (PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C) and nothing else, in /. Taps are made and removed through two long-lived
 * `ip -o -batch -` (starting a process costs more than a whole request): the helper alone
 * writes to their stdin, only tuntap add, link set and link del lines, each built from
 * checked names with no character ip's batch parser treats specially (helper/src/net).
 * Requests that arrive together are made in one batch, each still all-or-nothing on its own.
 * A tap goes on the device that had the bridge's name when the request was checked (its ifindex):
 * ip remembers names, so an ip that knew the name as another device is replaced, and each tap's
 * master is read back from /sys after the batch (on another device: undone, made again once in a
 * new ip, or refused). Each tap gets its bridge's MTU, read from /sys when the bridge is checked,
 * on the same `link set` line that attaches it (so a bridge whose MTU follows its ports is not
 * pulled down to 1500) and as `mtu_request` on an OVS Interface; it is read back afterwards and
 * is the reply's `mtu` (another MTU fails the request). A tap asked with more than one queue is
 * made `multi_queue` (net layer only so far); a VLAN access port as above. Deletions waiting together are one group deletion (`link set … group G`
 * each, one `link del group G`: one RCU grace period, not one a tap), in the helper's own
 * interface group. An OVS fake (VLAN) bridge's ports are found under the fake bridge, as
 * ovs-vsctl names them. What could not be deleted is an error, never "ok".
 *
 * Install. `xkvm-helper install` (install/) writes the pkexec launcher, polkit action (and rule),
 * units and a default-deny policy, and the launcher of xkvm-bridge-helper (the client side's
 * program for qemu's helper= and libvirt's bridge_helper: run by users, mode 0755, never as root;
 * it reaches this helper like any client, asking for fd handoff).
 *
 * Errors. Every failure the helper foresees is a CodedError of its family (policy, user database,
 * network, identity, install, command line, ...); one table (errors/table.ts) gives each code its
 * exit status and the code its error reply carries. Anything else is a bug: its details go to the
 * log only, the caller gets INTERNAL, the command exits 70.
 *
 * Crash safety. Session records and the ledger live in /run/xkvm/sessions. A restarted helper
 * keeps the taps of clients still running (qemu uses them) and removes, at once, those whose
 * clients died. Every tap is in the ledger as an intent (its name, no ifindex yet) before the ip
 * batch that creates it runs, so a helper killed in between leaves nothing unfindable: whoever
 * next holds that user's lock resolves the intent (the tap of that name, if it is a tap no other
 * entry claims) into an orphan, counts it and removes it; so does a starting helper, with the
 * session taps whose helper died before their session record was written.
 *
 * The request path, file by file, and where state lives: docs/architecture.md. The contract
 * (wire format, requests, invariants): docs/protocol.md.
 */
import { CodedError } from '../../shared/src/errors/coded-error.js';
import { escapeForTerminal } from '../../shared/src/text/escape.js';
import { parseArgs, UsageError, type Command } from './cli/args.js';
import { pkexecGuard, type PkexecContext } from './cli/pkexec-guard.js';
import type { Caller } from './identity/caller.js';
import {
  DEFAULT_CONNECTION_IDLE_SECONDS, DEFAULT_IDLE_SECONDS, DEFAULT_MAX_REFUSALS, DEFAULT_POLICY_FILE, DEFAULT_STATE_DIR,
} from './defaults.js';
import { errorDetails } from './errors/details.js';
import { EXIT, exitStatus } from './errors/table.js';

async function serve(command: Extract<Command, { kind: 'serve' }>, pkexec: PkexecContext | undefined): Promise<void> {
  const { serveSocket, serveStdio } = await import('./server.js');
  const { systemdFd } = await import('./transport/listen.js');
  const { systemNet } = await import('./requests/system-net.js');
  const { pkexecCaller, directStdioCaller } = await import('./identity/callers.js');
  const { stderrIsJournal } = await import('./audit/journal-stream.js');
  process.umask(0o022);
  const opts = {
    config: command.config, stateDir: command.stateDir, net: systemNet, idleMs: undefined as number | undefined,
    connectionIdleMs: command.idleConnectionSeconds * 1000, maxRefusals: command.maxRefusals, systemLog: pkexec !== undefined,
    // Under pkexec the environment is the caller's: JOURNAL_STREAM is not looked at.
    stderrIsJournal: pkexec === undefined && stderrIsJournal(),
  };
  if (command.stdio) {
    const identify = async (): Promise<Caller> => {
      if (pkexec === undefined) return directStdioCaller();
      if (pkexec.relayedClient === undefined) return pkexecCaller(pkexec.pkexecUid);
      const { relayedCaller } = await import('./cli/job-control.js');
      return relayedCaller(pkexec.pkexecUid, pkexec.relayedClient);
    };
    await serveStdio(opts, identify);
    return;
  }
  if (command.socket !== undefined) {
    await serveSocket(opts, { path: command.socket });
    return;
  }
  const fd = systemdFd();
  if (fd === undefined) {
    throw new UsageError('no socket to serve: run under systemd socket activation (xkvm-helper.socket), or give --socket PATH or --stdio');
  }
  await serveSocket({ ...opts, idleMs: command.idleSeconds * 1000 }, { fd });
}

/** Runs the command; resolves with the exit status, or -1 while serving (the process goes on). */
async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const pkexec = pkexecGuard(argv, process.env);
  if (pkexec !== undefined) {
    // Out of the caller's terminal job control before anything else: ^Z must not stop us.
    const { leaveJobControl, serveFromOwnSession } = await import('./cli/job-control.js');
    if (!leaveJobControl() && pkexec.relayedClient === undefined) return serveFromOwnSession(pkexec.pkexecUid);
    // Under pkexec nothing is configurable: the installed defaults, always.
    await serve({
      kind: 'serve', config: DEFAULT_POLICY_FILE, socket: undefined, stdio: true, stateDir: DEFAULT_STATE_DIR, idleSeconds: DEFAULT_IDLE_SECONDS,
      idleConnectionSeconds: DEFAULT_CONNECTION_IDLE_SECONDS, maxRefusals: DEFAULT_MAX_REFUSALS,
    }, pkexec);
    return -1;
  }
  const command = parseArgs(argv);
  switch (command.kind) {
    case 'help':
      return EXIT.ok;
    case 'serve':
      await serve(command, undefined);
      return -1;
    case 'policy-check': {
      const { policyCheck } = await import('./cli/policy-command.js');
      return policyCheck(command.config, command.user, command.bridge, command.stateDir, command.json);
    }
    case 'policy-show': {
      const { policyShow } = await import('./cli/policy-command.js');
      return policyShow(command.config);
    }
    case 'status': {
      const { statusCommand } = await import('./cli/status-command.js');
      return statusCommand(command);
    }
    case 'audit': {
      const { auditCommand } = await import('./cli/audit-command.js');
      return auditCommand(command);
    }
    case 'install': {
      const { runInstall } = await import('./cli/install-command.js');
      return runInstall(command.group);
    }
    case 'uninstall': {
      const { runUninstall } = await import('./cli/install-command.js');
      return runUninstall();
    }
  }
}

/**
 * One line on stderr and the exit status from the error table (errors/table.ts): 2 usage,
 * 3 the policy cannot be used, 4 another error explained in its message; anything else is a
 * bug (70), reported with its details.
 */
function report(error: unknown): never {
  const status = exitStatus(error);
  if (status === EXIT.internal || !(error instanceof CodedError)) {
    process.stderr.write(`xkvm-helper: internal error: ${errorDetails(error)}\n`);
    process.exit(EXIT.internal);
  }
  const hint = error instanceof UsageError ? ' (see xkvm-helper --help)' : '';
  process.stderr.write(`xkvm-helper: ${escapeForTerminal(error.message)}${hint}\n`);
  process.exit(status);
}

main().then(
  (status) => {
    if (status >= 0) process.exitCode = status;
  },
  report,
);
