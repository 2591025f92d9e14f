/**
 * The system log, for a helper whose stderr no admin reads (pkexec: stderr is the caller's).
 * Each audit record goes to the journal through its native protocol (one datagram on
 * /run/systemd/journal/socket, with the fields XKVM_EVENT, XKVM_UID, XKVM_USER, XKVM_RESULT
 * besides MESSAGE, so `journalctl XKVM_USER=alice` finds them), or, where there is no journal,
 * to syslog (/dev/log, `<PRI>Mmm dd hh:mm:ss xkvm-helper[PID]: MESSAGE`, facility authpriv).
 * MESSAGE is the record's JSON line, as on stderr and in the audit-log file.
 *
 * Sending never waits: a system log too busy to take a record (its queue is full) does not stall
 * the helper; the records it missed are counted and the count is sent with the next one that
 * gets through. The kernel stamps each datagram with the sender's pid and uid (the journal's
 * _PID and _UID=0), which no caller can forge.
 */
import type { AuditRecord } from './audit.js';
import { addon } from '../native/addon.js';

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

  /** Send one record (`line` is its JSON text). Never throws; failures go to stderr, once each. */
  send(record: AuditRecord, line: string): void {
    if (this.#missed > 0) {
      const missed = this.#missed;
      const note = JSON.stringify({ time: new Date().toISOString(), helper: process.pid, event: 'audit-missed', count: missed, why: 'the system log was too busy to take them; stderr and the audit-log file have them' });
      if (this.#deliver({ event: 'audit-missed', result: 'error' }, note, [['XKVM_MISSED', String(missed)]]) === 'sent') this.#missed -= missed;
    }
    if (this.#deliver(record, line, []) === 'busy') this.#missed += 1;
  }

  #deliver(record: AuditRecord, line: string, extra: ReadonlyArray<readonly [string, string]>): 'sent' | 'busy' | 'failed' {
    const severity = priority(record);
    const fields: Array<readonly [string, string]> = [
      ['MESSAGE', line],
      ['PRIORITY', String(severity)],
      ['SYSLOG_FACILITY', String(FACILITY)],
      ['SYSLOG_IDENTIFIER', IDENTIFIER],
      ['XKVM_EVENT', record.event],
    ];
    for (const [name, key] of [['XKVM_UID', 'uid'], ['XKVM_USER', 'user'], ['XKVM_RESULT', 'result']] as const) {
      const value = field(record, key);
      if (value !== undefined) fields.push([name, value]);
    }
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
