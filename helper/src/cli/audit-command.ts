/**
 * `xkvm-helper audit [--user U] [--bridge B] [--since DURATION] [--json] [--file FILE]`: the
 * records of the policy's `audit-log` (or FILE) that match, oldest first (the file's order), one
 * readable line each, or with --json each record as one JSON line. The file is read a line at a
 * time, so a log of any size is fine; a line that is not a record (cut short by a crash, say) is
 * counted and reported on stderr, never fatal.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import { matches, type AuditFilter } from '../audit/query.js';
import { formatRecord, printable, type ReadRecord } from '../audit/readable.js';
import { loadPolicy } from '../policy/parse.js';
import { userBySpec } from '../userdb/resolve.js';

/** The audit log cannot be found or read. */
export class AuditQueryError extends CodedError<'AUDIT_NO_LOG' | 'AUDIT_READ'> {
  override readonly name = 'AuditQueryError';
}

/** A record line longer than this is not one the helper wrote (its records are a few KiB). */
const MAX_LINE = 1 << 20;

export interface AuditQuery {
  readonly config: string;
  readonly file: string | undefined;
  readonly user: string | undefined;
  readonly bridge: string | undefined;
  /** How far back, in ms (parsed by the command line). */
  readonly sinceMs: number | undefined;
  readonly json: boolean;
}

function parseLine(line: string): ReadRecord | undefined {
  if (line.length > MAX_LINE) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as ReadRecord : undefined;
  } catch {
    return undefined;
  }
}

export async function auditCommand(q: AuditQuery, out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  const file = q.file ?? loadPolicy(q.config).auditLog?.value;
  if (file === undefined) {
    throw new AuditQueryError('AUDIT_NO_LOG', `the policy ${q.config} names no audit-log, so records went to the helper's stderr only ` +
      '(the journal under systemd: journalctl -u xkvm-helper.service; a pkexec\'d helper\'s to the system log, tag xkvm-helper); ' +
      'name one (audit-log /var/log/xkvm/audit.log) or give --file FILE');
  }
  const filter: AuditFilter = {
    uid: q.user === undefined ? undefined : /^\d+$/.test(q.user) ? Number(q.user) : (await userBySpec(q.user)).uid,
    bridge: q.bridge,
    since: q.sinceMs === undefined ? undefined : Date.now() - q.sinceMs,
  };
  let bad = 0;
  try {
    const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line === '') continue;
      const record = parseLine(line);
      if (record === undefined) {
        bad += 1;
        continue;
      }
      if (matches(record, filter)) out(q.json ? JSON.stringify(record) : formatRecord(record));
    }
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'EACCES' ? 'permission denied (the audit log is root\'s: run this as root)'
      : (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (nothing audited there yet?)' : (error as Error).message;
    throw new AuditQueryError('AUDIT_READ', `cannot read the audit log ${printable(file)}: ${why}`, { cause: error });
  }
  if (bad > 0) process.stderr.write(`xkvm-helper: audit: ${bad} line(s) of ${printable(file)} are not audit records (skipped)\n`);
  return 0;
}
