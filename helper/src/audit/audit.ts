/**
 * One audit record per request (who, what, decision, result, taps): a JSON object a line, on
 * stderr (journald under systemd), appended to the policy's `audit-log` file if set, and, for a
 * helper whose stderr no admin reads (pkexec), sent to the system log too (system-log.ts).
 * Everything that came from a caller is JSON-escaped, so no record can forge another.
 *
 * Root appends to the audit-log file, so the file is trusted only in a directory that only root
 * can change (checked like the policy file's directories, when the path is first set and again
 * whenever the policy names another): a path that fails is refused at start (AuditLogError) and,
 * named by a policy reload, refused with an audit record while the previous file stays in use.
 * Each record is appended through open(O_APPEND|O_NOFOLLOW|O_NONBLOCK): a symbolic link (or a
 * FIFO, or a file that is not root's alone) at the path is never written through.
 */
import { closeSync, constants, fstatSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import { trustedDirectoryProblem } from '../policy/safety.js';
import type { SystemLog } from './system-log.js';
import type { AuditThrottle } from './throttle.js';

export interface AuditRecord {
  event: string;
  [key: string]: unknown;
}

/** The policy's audit-log is in a place root must not write to: the helper refuses to start. */
export class AuditLogError extends CodedError<'AUDIT_LOG_UNSAFE'> {
  override readonly name = 'AuditLogError';
}

const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/** What makes `file` unfit for root to append to, or undefined. */
function auditFileProblem(file: string): string | undefined {
  const problem = trustedDirectoryProblem(dirname(file));
  return problem === undefined ? undefined : `its directory ${dirname(file)} cannot be trusted: ${problem}`;
}

export interface AuditOptions {
  /** Also send every record to the system log (pkexec: nobody but the caller reads stderr). */
  readonly systemLog?: SystemLog | undefined;
}

export class AuditLog {
  #file: string | undefined;
  /** Refusals beyond a per-uid rate are counted and summarised instead of written (throttle.ts). */
  throttle: AuditThrottle | undefined;
  /** A path a policy reload named and that was refused (reported once). */
  #refused: string | undefined;
  readonly #systemLog: SystemLog | undefined;

  /** Throws AuditLogError when `file` is in a directory root must not write to. */
  constructor(file?: string, options: AuditOptions = {}) {
    this.#systemLog = options.systemLog;
    if (file === undefined) return;
    const problem = auditFileProblem(file);
    if (problem !== undefined) {
      throw new AuditLogError('AUDIT_LOG_UNSAFE', `refusing audit-log ${file}: ${problem}; expected a file in a directory owned by root and writable by root alone, such as /var/log/xkvm`);
    }
    this.#file = file;
  }

  /** The policy's audit-log now (on every request): a new path is checked first, and refused with a record if unfit. */
  setFile(file: string | undefined): void {
    if (file === this.#file) return;
    if (file === undefined) {
      this.#file = undefined;
      this.#refused = undefined;
      return;
    }
    const problem = auditFileProblem(file);
    if (problem === undefined) {
      this.#file = file;
      this.#refused = undefined;
      return;
    }
    if (file === this.#refused) return;
    this.#refused = file;
    this.write({ event: 'audit-log', result: 'refused', file, message: `the policy names audit-log ${file}, but ${problem}: records still go to ${this.#file ?? 'stderr only'}` });
  }

  write(record: AuditRecord): void {
    if (this.throttle?.suppress(record) === true) return;
    const line = JSON.stringify({ time: new Date().toISOString(), helper: process.pid, ...record }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    process.stderr.write(`xkvm-helper: audit ${line}\n`);
    if (this.#file !== undefined) this.#append(this.#file, line);
    this.#systemLog?.send(record, line);
  }

  #append(file: string, line: string): void {
    let fd: number | undefined;
    try {
      fd = openSync(file, APPEND, 0o640);
      const stat = fstatSync(fd);
      if (!stat.isFile() || stat.uid !== 0 || stat.nlink !== 1 || (stat.mode & 0o022) !== 0) {
        throw new Error('it is not a regular file owned by root, writable by root alone, with one link');
      }
      writeSync(fd, `${line}\n`);
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === 'ELOOP' ? 'it is a symbolic link, which is never followed' : (error as Error).message;
      process.stderr.write(`xkvm-helper: cannot append to audit-log ${file}: ${why}\n`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}
