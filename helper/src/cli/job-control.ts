/**
 * Under pkexec the helper is the caller's child: in the caller's terminal session and, as a rule,
 * in the caller's foreground job. Left there, ^Z (SIGTSTP) would stop a root helper in the middle
 * of a request (holding its user's lock), ^C would kill it with its session's taps in place, and
 * its children (`ip`, `ovs-vsctl`) would be stopped or killed along with the job.
 *
 * So, before anything else runs, it ignores SIGTSTP, SIGTTIN, SIGTTOU, SIGINT and SIGQUIT and
 * leaves the session (setsid(), in the addon): no terminal can signal it or its children after
 * that; the caller's end shows as the end of its stdin, as always.
 *
 * setsid() is impossible for the leader of a process group, which is what pkexec is when an
 * interactive shell runs it as a job. That helper then serves nothing itself: it starts the
 * helper again in a session of its own (spawn's `detached`), handing it the client it was run by
 * (our parent: pid and start time, in XKVM_PKEXEC_CLIENT, believed only from a root parent), and
 * waits for it, its exit status becoming ours. It stays in the job, ignoring those signals; a
 * SIGHUP (the terminal hung up) is passed on, and ends the session there (server.ts).
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { FIXED_PATH } from '../defaults.js';
import { IdentityError } from '../identity/errors.js';
import { processStartTime } from '../identity/process-start.js';
import type { Caller } from '../identity/caller.js';
import { addon } from '../native/addon.js';

/** Ignore the job-control signals, then leave the session; false when we lead a process group and cannot. */
export function leaveJobControl(): boolean {
  const how = addon().leaveTerminal();
  if (how !== 'session' && how !== 'group-leader') throw new Error(`leaveTerminal returned ${String(how)}`);
  return how === 'session';
}

/** Start the helper again in a session of its own for our caller (our parent); resolves with its exit status. */
export function serveFromOwnSession(pkexecUid: string): Promise<number> {
  const client = { pid: process.ppid, start: (processStartTime(process.ppid) ?? 0n).toString() };
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  const child = spawn(process.execPath, [main, '--stdio'], {
    detached: true,
    stdio: 'inherit',
    cwd: '/',
    env: { PATH: FIXED_PATH, PKEXEC_UID: pkexecUid, XKVM_PKEXEC_CLIENT: `${client.pid}:${client.start}` },
  });
  process.on('SIGHUP', () => child.kill('SIGHUP'));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
  });
}

/**
 * The caller handed over by the helper that started us (see above): only from a root parent, and
 * only while that client still runs with the start time it was seen with.
 */
export async function relayedCaller(pkexecUid: string, client: { pid: number; start: string }): Promise<Caller> {
  let parentUid: number | undefined;
  try {
    parentUid = statSync(`/proc/${process.ppid}`).uid;
  } catch {
    parentUid = undefined;
  }
  if (parentUid !== 0) throw new IdentityError(`XKVM_PKEXEC_CLIENT comes from a parent that is not root (uid ${parentUid ?? 'unknown'})`);
  const { pkexecCaller } = await import('../identity/callers.js');
  const caller = await pkexecCaller(pkexecUid, client.pid);
  if (caller.start.toString() !== client.start) throw new IdentityError(`the client process ${client.pid} is gone`);
  return caller;
}
