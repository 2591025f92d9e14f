/** Stand-ins for unit tests of the service and the connection: an audit log kept in memory, callers. */
import { AuditLog, type AuditRecord } from '../../../helper/src/audit/audit.js';
import type { Caller } from '../../../helper/src/identity/caller.js';

export class MemoryAudit extends AuditLog {
  readonly records: AuditRecord[] = [];

  override write(record: AuditRecord): void {
    this.records.push(record);
  }
}

/** A caller as identification would give it (this process's pid, a made-up user). */
export function caller(name: string, uid: number): Caller {
  return { uid, gid: uid, pid: process.pid, start: 1n, transport: 'socket', user: { name, uid, gid: uid, groups: [] } };
}
