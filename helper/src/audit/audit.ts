/**
 * One audit record per request (who, what, decision, result, taps): a JSON object a line,
 * appended to the policy's `audit-log` file if set, and on stderr; under systemd (stderr is the
 * journal's stream) sent to the journal natively with fields instead of as stderr text, and for
 * a helper whose stderr no admin reads (pkexec) sent to the system log as well (system-log.ts).
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
  /**
   * stderr is the journal's stream (a systemd service): a record the system log took natively,
   * with its fields, is not written there again as text; one it could not take still is.
   */
  readonly stderrIsJournal?: boolean | undefined;
}

export class AuditLog {
  #file: string | undefined;
  /** Refusals beyond a per-uid rate are counted and summarised instead of written (throttle.ts). */
  throttle: AuditThrottle | undefined;
  /** A path a policy reload named and that was refused (reported once). */
  #refused: string | undefined;
  readonly #systemLog: SystemLog | undefined;
  readonly #stderrIsJournal: boolean;

  /** Throws AuditLogError when `file` is in a directory root must not write to. */
  constructor(file?: string, options: AuditOptions = {}) {
    this.#systemLog = options.systemLog;
    this.#stderrIsJournal = options.stderrIsJournal === true;
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
    const full: AuditRecord = { time: new Date().toISOString(), helper: process.pid, ...record };
    const line = JSON.stringify(full, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    if (this.#file !== undefined) this.#append(this.#file, line);
    const logged = this.#systemLog?.send(full, line) === true;
    if (!(logged && this.#stderrIsJournal)) process.stderr.write(`xkvm-helper: audit ${line}\n`);
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
