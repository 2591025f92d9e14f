/** Who is asking, as established from the kernel (SO_PEERCRED) or from pkexec (PKEXEC_UID). */
import type { UserRecord } from '../userdb/types.js';

export interface Caller {
  uid: number;
  gid: number;
  /** The client process: the socket peer, or pkexec's caller (our parent). */
  pid: number;
  /** The client's start time (clock ticks since boot), so a reused pid cannot pass for it. */
  start: bigint;
  user: UserRecord;
  transport: 'socket' | 'pkexec' | 'stdio';
}
