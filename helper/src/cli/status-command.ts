/**
 * `xkvm-helper status [--json] [--user U] [--state-dir DIR]` (root): every tap the helpers made
 * that still exists (records/status.ts), as a table or as `{"taps": [...]}` (docs/protocol.md).
 */
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import { collectStatus, type StatusRow } from '../records/status.js';
import { userBySpec, userByUid } from '../userdb/resolve.js';

/** status cannot read the helper's state: it is root's, or unreadable. */
export class StatusError extends CodedError<'STATUS_NOT_ROOT' | 'STATUS_READ'> {
  override readonly name = 'StatusError';
}

export interface StatusQuery {
  readonly stateDir: string;
  readonly user: string | undefined;
  readonly json: boolean;
}

/** Each uid's user name, or undefined where the user database has none (a deleted user). */
async function names(uids: readonly number[]): Promise<Map<number, string | undefined>> {
  const out = new Map<number, string | undefined>();
  for (const uid of new Set(uids)) {
    try {
      out.set(uid, (await userByUid(uid)).name);
    } catch {
      out.set(uid, undefined);
    }
  }
  return out;
}

function extras(r: StatusRow): string {
  const parts = [
    ...(r.queues === undefined ? [] : [`queues=${r.queues}`]),
    ...(r.vlan === undefined ? [] : [`vlan=${r.vlan}`]),
    ...(r.mac === undefined ? [] : [`mac-lock=${r.mac}`]),
    ...(r.owner === undefined ? [] : [`owned by uid ${r.owner} now`]),
    ...(r.orphan === true ? ['orphan, being removed'] : []),
  ];
  return parts.join(' ') || '-';
}

/** Columns padded to their widest cell; the last one as is. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

export async function statusCommand(q: StatusQuery, out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  if (process.geteuid?.() !== 0) {
    throw new StatusError('STATUS_NOT_ROOT', `status reads the helpers' ledger and session records in ${q.stateDir}, which are root's alone: run it as root`);
  }
  const problems: string[] = [];
  let rows: StatusRow[];
  try {
    rows = collectStatus(q.stateDir, (file, why) => problems.push(`${file}: ${why}`));
  } catch (error) {
    throw new StatusError('STATUS_READ', `cannot read the helpers' state in ${q.stateDir}: ${(error as Error).message}`, { cause: error });
  }
  if (q.user !== undefined) {
    const uid = /^\d+$/.test(q.user) ? Number(q.user) : (await userBySpec(q.user)).uid;
    rows = rows.filter((r) => r.uid === uid);
  }
  const users = await names(rows.map((r) => r.uid));
  for (const p of problems) process.stderr.write(`xkvm-helper: status: skipped ${escapeForTerminal(p)}\n`);
  if (q.json) {
    out(JSON.stringify({ taps: rows.map((r) => ({ ...r, user: users.get(r.uid) ?? null })) }));
    return 0;
  }
  if (rows.length === 0) {
    out('no taps made by the helpers exist now');
    return 0;
  }
  const header = ['TAP', 'BRIDGE', 'TYPE', 'USER', 'LIFETIME', 'SINCE', 'SESSION', 'CLIENT', 'MTU', 'GRANTS AND NOTES'];
  const body = rows.map((r) => [
    r.tap, r.bridge, r.type, `${users.get(r.uid) ?? '?'}(${r.uid})`, r.lifetime, r.since ?? '-', r.session ?? '-',
    r.client === undefined ? '-' : String(r.client), r.mtu === undefined ? '-' : String(r.mtu), extras(r),
  ].map(escapeForTerminal));
  for (const line of table([header, ...body])) out(line);
  return 0;
}
