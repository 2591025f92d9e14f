/** Assemble the helper from its parts and serve: a listening socket, or one stdio session. */
import type { Socket } from 'node:net';
import { AuditLog } from './audit/audit.js';
import { SystemLog } from './audit/system-log.js';
import { processStartTime } from './identity/process-start.js';
import { PolicyHolder } from './policy/holder.js';
import type { Caller } from './identity/caller.js';
import type { NetOps } from './requests/net-ops.js';
import { Service } from './requests/service.js';
import { hostLock, quotaLockPath } from './requests/quota-lock.js';
import { Reaper } from './records/reaper.js';
import { SessionStore, trustedStateDir } from './records/store.js';
import { Connection } from './transport/connection.js';
import { listen } from './transport/listen.js';
import { socketCaller } from './identity/callers.js';
import { peerCredentials } from './identity/peercred.js';

export interface ServeOptions {
  config: string;
  stateDir: string;
  net: NetOps;
  /** Exit after this long without connections or adopted sessions (socket modes). */
  idleMs: number | undefined;
  /** Also send every audit record to the system log (pkexec: only the caller sees stderr). */
  systemLog: boolean;
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
  const audit = new AuditLog('policy' in current ? current.policy.auditLog?.value : undefined, { systemLog: opts.systemLog ? new SystemLog() : undefined });
  const store = new SessionStore(trustedStateDir(opts.stateDir));
  const self = { pid: process.pid, start: (processStartTime(process.pid) ?? 0n).toString() };
  const lockFile = quotaLockPath(store.dir);
  const service = new Service({ policy, net: opts.net, audit, store, helper: self, log, lock: () => hostLock(lockFile) });
  const reaper = new Reaper({ store, net: opts.net, audit, self, ovsdbOption: () => policy.ovsdbOption() });
  return { policy, audit, store, service, reaper };
}

/** Serve connections on a listening socket until idle (if idleMs) or killed. */
export async function serveSocket(opts: ServeOptions, where: { fd: number } | { path: string }): Promise<void> {
  const { audit, store, service, reaper } = assemble(opts);
  let open = 0;
  let idle: NodeJS.Timeout | undefined;
  const armIdle = (): void => {
    if (opts.idleMs === undefined || open > 0 || reaper.adopted > 0 || idle !== undefined) return;
    idle = setTimeout(() => {
      audit.write({ event: 'helper-exit', why: `idle for ${opts.idleMs! / 1000} s` });
      server.close();
      process.exit(0);
    }, opts.idleMs);
  };
  const onConnection = (socket: Socket): void => {
    open += 1;
    if (idle !== undefined) clearTimeout(idle);
    idle = undefined;
    let peer: { uid: number; pid: number } | undefined;
    try {
      const cred = peerCredentials(socket);
      peer = { uid: cred.uid, pid: cred.pid };
    } catch {
      // identify() will fail for this connection and say why
    }
    new Connection({
      input: socket,
      output: socket,
      close: () => socket.destroy(),
      identify: () => socketCaller(socket),
      peer,
      service,
      audit,
      log,
      newSessionId: () => store.newId(),
      onEnd: () => {
        open -= 1;
        armIdle();
      },
    });
  };
  const server = await listen(onConnection, where);
  reaper.onIdle = armIdle;
  const swept = await reaper.sweep(true);
  audit.write({ event: 'helper-start', mode: 'fd' in where ? 'systemd' : 'socket', socket: 'path' in where ? where.path : 'fd 3', config: opts.config, state: opts.stateDir, reaped: swept.removed, adopted: swept.kept });
  armIdle();
  const stop = (signal: NodeJS.Signals): void => {
    audit.write({ event: 'helper-exit', why: signal });
    server.close();
    // Sessions end with their connections; adopted ones stay on disk for the next helper.
    process.exit(0);
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
    onEnd: () => process.exit(0),
  });
  serving = true;
  if (hungUp) process.stdin.destroy();
}
