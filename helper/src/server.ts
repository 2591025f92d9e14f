/** Assemble the helper from its parts and serve: a listening socket, or one stdio session. */
import { fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import { AuditLog } from './audit/audit.js';
import { AuditThrottle } from './audit/throttle.js';
import { SystemLog } from './audit/system-log.js';
import { processStartTime } from './identity/process-start.js';
import { PolicyHolder } from './policy/holder.js';
import type { Caller } from './identity/caller.js';
import type { NetOps } from './requests/net-ops.js';
import { Service } from './requests/service.js';
import { Ledger } from './records/ledger.js';
import { Reaper } from './records/reaper.js';
import { SessionStore, trustedStateDir } from './records/store.js';
import { DEFAULT_CONNECTION_IDLE_SECONDS } from './defaults.js';
import { Connection } from './transport/connection.js';
import { listen } from './transport/listen.js';
import { Admission, overLimit } from './transport/admission.js';
import { MAX_CONNECTIONS } from './transport/slots.js';
import { socketCaller } from './identity/callers.js';
import { peerCredentials } from './identity/peercred.js';

export interface ServeOptions {
  config: string;
  stateDir: string;
  net: NetOps;
  /** Exit after this long without connections or adopted sessions (socket modes). */
  idleMs: number | undefined;
  /**
   * Close a connection that holds no session taps after this long without a request, or with
   * its replies unread (socket modes; default 5 s).
   */
  connectionIdleMs?: number | undefined;
  /** Close a connection after this many refused requests in a row (default 8; 0: never). */
  maxRefusals?: number | undefined;
  /** Also send every audit record to the system log (pkexec: only the caller sees stderr). */
  systemLog: boolean;
  /** stderr is the journal (systemd): audit records go to it natively, with fields, not as stderr text. */
  stderrIsJournal?: boolean | undefined;
}

function log(message: string): void {
  process.stderr.write(`xkvm-helper: ${message}\n`);
}

/**
 * Start-up checks first, in this order, each refusing to start with its own exit status: the
 * policy (3), its audit-log's directory (3), the state directory (4). Root acts on what the
 * audit-log and state directories hold, so each must be one only root can change.
 */
function assemble(opts: ServeOptions) {
  const policy = new PolicyHolder(opts.config);
  const current = policy.current();
  const audit = new AuditLog('policy' in current ? current.policy.auditLog?.value : undefined, {
    systemLog: opts.systemLog || opts.stderrIsJournal === true ? new SystemLog() : undefined, stderrIsJournal: opts.stderrIsJournal,
  });
  audit.throttle = new AuditThrottle({ write: (record) => audit.write(record) });
  const store = new SessionStore(trustedStateDir(opts.stateDir));
  const ledger = new Ledger(store.dir, { onBad: (file, why) => audit.write({ event: 'ledger', result: 'unreadable', file, message: why }) });
  const self = { pid: process.pid, start: (processStartTime(process.pid) ?? 0n).toString() };
  const service = new Service({ policy, net: opts.net, audit, store, ledger, helper: self, log });
  const reaper = new Reaper({
    store, ledger, net: opts.net, audit, self, ovsdbOption: () => policy.ovsdbOption(),
    onVanished: (entries) => void service.fdTaps.removePorts(entries),
  });
  // The link watcher's ip is unref'd, not ended by exit(): end it (after a SIGKILL of the helper,
  // setpriv's parent-death signal ends it: net/linkwatch.ts).
  process.once('exit', () => service.fdTaps.stop());
  return { policy, audit, store, service, reaper };
}

/** Pending audit summaries, then the helper-exit record, and exit. */
function exitHelper(audit: AuditLog, why: string): never {
  audit.throttle?.flush();
  audit.write({ event: 'helper-exit', why });
  process.exit(0);
}

/** Serve connections on a listening socket until idle (if idleMs) or killed. */
export async function serveSocket(opts: ServeOptions, where: { fd: number } | { path: string }): Promise<void> {
  const { policy, audit, store, service, reaper } = assemble(opts);
  const admission = new Admission(policy, audit);
  let open = 0;
  let idle: NodeJS.Timeout | undefined;
  const armIdle = (): void => {
    if (opts.idleMs === undefined || open > 0 || reaper.adopted > 0 || idle !== undefined) return;
    idle = setTimeout(() => {
      server.close();
      exitHelper(audit, `idle for ${opts.idleMs! / 1000} s`);
    }, opts.idleMs);
  };
  const gone = (): void => {
    open -= 1;
    armIdle();
  };
  const onConnection = (socket: Socket): void => {
    open += 1;
    if (idle !== undefined) clearTimeout(idle);
    idle = undefined;
    // Until the Connection listens: an error must not be an uncaught exception.
    socket.on('error', () => undefined);
    let peer: { uid: number; pid: number } | undefined;
    try {
      const cred = peerCredentials(socket);
      peer = { uid: cred.uid, pid: cred.pid };
    } catch {
      // identify() will fail for this connection and say why
    }
    // A place among all connections, and among the uid's own (the kernel named the uid already).
    const slot = admission.slots.take(peer?.uid);
    if (slot === undefined) {
      admission.refuse(socket, peer, `the helper already serves ${MAX_CONNECTIONS} connections, as many as it takes: try again later`, gone);
      return;
    }
    const ceiling = peer === undefined ? Infinity : admission.ceiling(peer.uid);
    const ahead = slot.ahead();
    if (peer !== undefined && ahead >= ceiling) {
      slot.release();
      admission.refuse(socket, peer, `uid ${peer.uid} already has ${ahead} connections open to the helper, and max-connections allows it at most ${ceiling}: close one first`, gone);
      return;
    }
    const identity = socketCaller(socket);
    // Its failure is reported to the client with its first request (NO_IDENTITY).
    identity.catch(() => undefined);
    void identity.then((caller) => caller, () => undefined).then((caller) => {
      if (socket.destroyed) {
        slot.release();
        gone();
        return;
      }
      if (peer !== undefined) {
        const limit = admission.limit(peer.uid, caller);
        const before = slot.ahead();
        if (before >= limit.limit) {
          slot.release();
          admission.refuse(socket, peer, overLimit(caller?.user.name ?? `uid ${peer.uid}`, before, limit), gone);
          return;
        }
      }
      new Connection({
        input: socket,
        output: socket,
        close: () => socket.destroy(),
        identify: () => identity,
        peer,
        service,
        audit,
        log,
        newSessionId: () => store.newId(),
        fds: { socket },
        idleMs: opts.connectionIdleMs ?? DEFAULT_CONNECTION_IDLE_SECONDS * 1000,
        maxRefusals: opts.maxRefusals,
        onClosed: () => slot.release(),
        onEnd: gone,
      });
    });
  };
  const server = await listen(onConnection, where);
  reaper.onIdle = armIdle;
  // Fd taps first: those that died while no helper ran lose their ports before the reaper
  // settles the ledgers. Those still held (by qemu) are watched, without keeping the helper up.
  await service.fdTaps.sweep(true);
  const swept = await reaper.sweep(true);
  audit.write({ event: 'helper-start', mode: 'fd' in where ? 'systemd' : 'socket', socket: 'path' in where ? where.path : 'fd 3', config: opts.config, state: opts.stateDir, reaped: swept.removed, adopted: swept.kept });
  armIdle();
  const stop = (signal: NodeJS.Signals): void => {
    server.close();
    // Sessions end with their connections; adopted ones stay on disk for the next helper.
    exitHelper(audit, signal);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/**
 * One session on stdin/stdout (pkexec, or run by hand); exits when it ends. SIGHUP (the
 * terminal hung up) ends it as the end of stdin does: its taps are removed, then it exits.
 */
export async function serveStdio(opts: ServeOptions, identify: () => Promise<Caller>): Promise<void> {
  const { audit, store, service, reaper } = assemble(opts);
  // stderr is the caller's (pkexec): a closed pipe or a hung-up terminal there must not crash
  // the helper before its session's taps are removed. The audit-log file and the system log
  // still get every record.
  process.stderr.on('error', () => {});
  let hungUp = false;
  let serving = false;
  process.on('SIGHUP', () => {
    if (hungUp) return;
    hungUp = true;
    audit.write({ event: 'signal', signal: 'SIGHUP', why: 'the terminal hung up: the session ends' });
    if (serving) process.stdin.destroy();
  });
  // A stdio helper is short-lived: it removes what dead clients left, but adopts nothing.
  await service.fdTaps.sweep(false);
  await reaper.sweep(false);
  new Connection({
    input: process.stdin,
    output: process.stdout,
    close: () => {
      process.stdin.destroy();
    },
    identify,
    service,
    audit,
    log,
    newSessionId: () => store.newId(),
    fds: stdioFds(),
    maxRefusals: opts.maxRefusals,
    onEnd: () => {
      audit.throttle?.flush();
      process.exit(0);
    },
  });
  serving = true;
  if (hungUp) process.stdin.destroy();
}

/**
 * Whether replies on stdout can carry fds: only when stdout is a Unix socket (the client gives
 * the helper one end of a socketpair as stdin and stdout); a pipe cannot (fd handoff is then
 * BAD_REQUEST saying why).
 */
function stdioFds(): { socket: Socket } | { refusal: string } {
  const refusal = 'fd handoff needs a Unix socket as stdin/stdout; xkvm passes one end of a socketpair';
  let isSocket = false;
  try {
    isSocket = fstatSync(1).isSocket();
  } catch {
    // no stdout
  }
  if (!isSocket || !(process.stdout instanceof Socket)) return { refusal: `${refusal}, and this helper's stdout is not a socket` };
  return { socket: process.stdout };
}
