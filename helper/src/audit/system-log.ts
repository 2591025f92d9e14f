/**
 * The system log: the journal for a helper under systemd whose stderr is the journal (records
 * then go natively, with fields, instead of as stderr text) and for a helper whose stderr no
 * admin reads (pkexec: stderr is the caller's). Each audit record goes to the journal through its
 * native protocol (one datagram on /run/systemd/journal/socket) as a readable MESSAGE (the line
 * `xkvm-helper audit` prints) with fields to select by: XKVM_EVENT, XKVM_UID, XKVM_USER,
 * XKVM_RESULT, XKVM_CODE, XKVM_OP, XKVM_SESSION, XKVM_BRIDGE and XKVM_TAP (once per bridge and
 * tap), a MESSAGE_ID per event kind, and XKVM_RECORD, the record's JSON line as in the audit-log
 * file; so `journalctl XKVM_USER=alice` finds them. Where there is no journal the record goes to
 * syslog (/dev/log, `<PRI>Mmm dd hh:mm:ss xkvm-helper[PID]: JSON`, facility authpriv).
 *
 * Sending never waits: a system log too busy to take a record (its queue is full) does not stall
 * the helper; the records it missed are counted and the count is sent with the next one that
 * gets through. The kernel stamps each datagram with the sender's pid and uid (the journal's
 * _PID and _UID=0), which no caller can forge.
 */
import type { AuditRecord } from './audit.js';
import { addon } from '../native/addon.js';
import { formatRecord, recordBridges, recordTaps } from './readable.js';

export interface SystemLogPaths {
  /** The journal's native socket. */
  readonly journal: string;
  /** syslog's socket, used when nothing listens on `journal`. */
  readonly syslog: string;
}

const SYSTEM_LOG_PATHS: SystemLogPaths = { journal: '/run/systemd/journal/socket', syslog: '/dev/log' };

const IDENTIFIER = 'xkvm-helper';
/** LOG_AUTHPRIV: where privileged programs (sudo, su, polkit) log. */
const FACILITY = 10;
const INFO = 6;
const WARNING = 4;
/** errno names that mean nobody listens at a path. */
const ABSENT = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK', 'EPROTOTYPE', 'ENOTDIR']);
/** errno names that mean the listener is there but cannot take more right now. */
const BUSY = new Set(['EAGAIN', 'EWOULDBLOCK', 'ENOBUFS']);

type Send = (path: string, data: Buffer) => void;

function priority(record: AuditRecord): number {
  const result = record['result'];
  return result === undefined || result === 'ok' ? INFO : WARNING;
}

function field(record: AuditRecord, key: string): string | undefined {
  const caller = record['caller'];
  const value: unknown = typeof caller === 'object' && caller !== null && key in caller ? Reflect.get(caller, key) : record[key];
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

/**
 * One MESSAGE_ID per kind of record (`journalctl MESSAGE_ID=...`), fixed for good: scripts and
 * journal catalogs rely on them. A kind not listed gets OTHER_ID.
 * @internal Exported for the tests that check each entry carries its kind's id.
 */
export const MESSAGE_IDS: Readonly<Record<string, string>> = {
  'request': '1c8e1dbef9cc4d35a5048052ee2ba6de',
  'session-end': '6def18c005754451a4675a974b119187',
  'session-reaped': '03e5fdcd9d2e4db0beab9e060fdb9b40',
  'session-adopted': '40c99a341c2e41ebb18cc683eac30177',
  'session-record': 'f04eddc8fcd549dd9ca9110a7a4d1531',
  'orphans-removed': 'bdb4ac683c8e406e9549dedf1d2ba0cf',
  'undelivered': '11f4e7a3dc694cabb25920d77b8f97cb',
  'ledger': '021c3682ed584b1e9d012091b8ce2e6d',
  'connection': 'd20102944711498ebd1855309b223a99',
  'identify': '226f46602b59469fa0aa2711685b1053',
  'helper-start': '87fb6a98be464640bf1e20200f485626',
  'helper-exit': 'ffd18a4b34bf489f824b544068549e8a',
  'signal': 'f1a62581462b468d830df172d6bb94e9',
  'audit-log': '5f73e97ec50741d0bcc30ba2f1ae29a4',
  'audit-summary': '48b1cccb43384f59a303161cc1076546',
  'audit-missed': 'a897dfd81262444997c644348f9ec536',
};
const OTHER_ID = 'c8d65cc19e2c4224969c8cfec442bada';

/**
 * A journal entry (systemd's native protocol): `KEY=value\n` per field, or, for a value holding
 * a newline, `KEY\n`, its length as 64-bit little-endian, the value, `\n`.
 */
function journalEntry(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of fields) {
    if (!value.includes('\n')) {
      parts.push(Buffer.from(`${key}=${value}\n`, 'utf8'));
      continue;
    }
    const bytes = Buffer.from(value, 'utf8');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(bytes.length));
    parts.push(Buffer.from(`${key}\n`, 'utf8'), length, bytes, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/** `<PRI>Mmm dd hh:mm:ss xkvm-helper[PID]: message`, as glibc's syslog(3) sends it to /dev/log. */
function syslogLine(severity: number, message: string, now: Date): Buffer {
  const two = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${MONTHS[now.getMonth()]} ${String(now.getDate()).padStart(2, ' ')} ${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}`;
  return Buffer.from(`<${FACILITY * 8 + severity}>${stamp} ${IDENTIFIER}[${process.pid}]: ${message}`, 'utf8');
}

export class SystemLog {
  readonly #paths: SystemLogPaths;
  readonly #send: Send;
  /** Records the system log was too busy to take, not yet reported to it. */
  #missed = 0;
  /** The last failure reported on stderr (each different one is reported once). */
  #reported: string | undefined;

  constructor(paths: SystemLogPaths = SYSTEM_LOG_PATHS, send: Send = (path, data) => void addon().sendDatagram(path, data)) {
    this.#paths = paths;
    this.#send = send;
  }

  /**
   * Send one record (`line` is its JSON text); whether the journal or syslog took it. Never
   * throws; failures go to stderr, once each.
   */
  send(record: AuditRecord, line: string): boolean {
    if (this.#missed > 0) {
      const missed = this.#missed;
      const note: AuditRecord = { event: 'audit-missed', result: 'error', count: missed, why: 'the system log was too busy to take them; stderr and the audit-log file have them' };
      const noteLine = JSON.stringify({ time: new Date().toISOString(), helper: process.pid, ...note });
      if (this.#deliver(note, noteLine, [['XKVM_MISSED', String(missed)]]) === 'sent') this.#missed -= missed;
    }
    const outcome = this.#deliver(record, line, []);
    if (outcome === 'busy') this.#missed += 1;
    return outcome === 'sent';
  }

  #deliver(record: AuditRecord, line: string, extra: ReadonlyArray<readonly [string, string]>): 'sent' | 'busy' | 'failed' {
    const severity = priority(record);
    const fields: Array<readonly [string, string]> = [
      ['MESSAGE', formatRecord(record)],
      ['MESSAGE_ID', MESSAGE_IDS[record.event] ?? OTHER_ID],
      ['PRIORITY', String(severity)],
      ['SYSLOG_FACILITY', String(FACILITY)],
      ['SYSLOG_IDENTIFIER', IDENTIFIER],
      ['XKVM_EVENT', record.event],
    ];
    for (const [name, key] of [['XKVM_UID', 'uid'], ['XKVM_USER', 'user'], ['XKVM_RESULT', 'result'], ['XKVM_CODE', 'code'], ['XKVM_OP', 'op'], ['XKVM_SESSION', 'session']] as const) {
      const value = field(record, key);
      if (value !== undefined) fields.push([name, value]);
    }
    for (const bridge of recordBridges(record)) fields.push(['XKVM_BRIDGE', bridge]);
    for (const tap of recordTaps(record)) fields.push(['XKVM_TAP', tap]);
    fields.push(['XKVM_RECORD', line]);
    fields.push(...extra);
    const journal = this.#attempt(this.#paths.journal, journalEntry(fields));
    if (journal === undefined) return 'sent';
    if (BUSY.has(journal)) return 'busy';
    if (!ABSENT.has(journal)) {
      this.#report(`the journal (${this.#paths.journal}) refuses audit records: ${journal}`);
      return 'failed';
    }
    const syslog = this.#attempt(this.#paths.syslog, syslogLine(severity, line, new Date()));
    if (syslog === undefined) return 'sent';
    if (BUSY.has(syslog)) return 'busy';
    this.#report(`neither the journal (${this.#paths.journal}: ${journal}) nor syslog (${this.#paths.syslog}: ${syslog}) takes audit records`);
    return 'failed';
  }

  /** Send; undefined when sent, else the errno's name. */
  #attempt(path: string, data: Buffer): string | undefined {
    try {
      this.#send(path, data);
      return undefined;
    } catch (error) {
      const code: unknown = typeof error === 'object' && error !== null ? Reflect.get(error, 'code') : undefined;
      return typeof code === 'string' ? code : String(error);
    }
  }

  #report(problem: string): void {
    if (problem === this.#reported) return;
    this.#reported = problem;
    process.stderr.write(`xkvm-helper: ${problem}\n`);
  }
}
