/**
 * Who is at the other end, from the kernel only: SO_PEERCRED on the socket, or, under pkexec,
 * PKEXEC_UID checked against our parent process (pkexec execs us, so our parent is the client).
 * Never anything the client sends.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { IdentityError } from './errors.js';
import { peerCredentials } from './peercred.js';
import { processStartTime } from './process-start.js';
import { userByUid } from '../userdb/resolve.js';
import type { Caller } from './caller.js';

function startOf(pid: number): bigint {
  const start = processStartTime(pid);
  if (start === undefined) throw new IdentityError(`the client process ${pid} is gone`);
  return start;
}

export async function socketCaller(socket: Socket): Promise<Caller> {
  const cred = peerCredentials(socket);
  const start = startOf(cred.pid);
  const user = await userByUid(cred.uid);
  return { uid: cred.uid, gid: cred.gid, pid: cred.pid, start, user, transport: 'socket' };
}

/** The real uid of a process, from /proc/PID/status. */
function realUid(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'latin1').split('\n').find((l) => l.startsWith('Uid:'));
    const uid = line?.split(/\s+/)[1];
    return uid === undefined ? undefined : Number(uid);
  } catch {
    return undefined;
  }
}

/** Under pkexec: `pkexecUid` is PKEXEC_UID as pkexec set it. */
export async function pkexecCaller(pkexecUid: string, parentPid: number = process.ppid): Promise<Caller> {
  if (!/^(0|[1-9][0-9]{0,9})$/.test(pkexecUid) || Number(pkexecUid) > 0x7fffffff) {
    throw new IdentityError('PKEXEC_UID is not a uid');
  }
  const uid = Number(pkexecUid);
  const parentUid = realUid(parentPid);
  if (parentUid !== uid) {
    throw new IdentityError(`PKEXEC_UID ${uid} does not match the calling process ${parentPid} (uid ${parentUid ?? 'unknown'})`);
  }
  const user = await userByUid(uid);
  return { uid, gid: user.gid, pid: parentPid, start: startOf(parentPid), user, transport: 'pkexec' };
}

/** `--stdio` run directly (not by pkexec): the caller is whoever ran us, i.e. our own real uid. */
export async function directStdioCaller(): Promise<Caller> {
  const uid = process.getuid?.();
  // Never "root" for want of an answer.
  if (uid === undefined) throw new IdentityError('cannot tell who ran the helper: this platform has no real uid (process.getuid)');
  const user = await userByUid(uid);
  const pid = process.ppid;
  return { uid, gid: user.gid, pid, start: startOf(pid), user, transport: 'stdio' };
}
