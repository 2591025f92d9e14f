/**
 * One audit record per request (who, what, decision, result, taps): a JSON object a line, on
 * stderr (journald under systemd) and appended to the policy's `audit-log` file if set.
 * Everything that came from a caller is JSON-escaped, so no record can forge another.
 */
import { appendFileSync } from 'node:fs';
import type { AuditThrottle } from './throttle.js';

export interface AuditRecord {
  event: string;
  [key: string]: unknown;
}

export class AuditLog {
  #file: string | undefined;
  /** Refusals beyond a per-uid rate are counted and summarised instead of written (throttle.ts). */
  throttle: AuditThrottle | undefined;

  constructor(file?: string) {
    this.#file = file;
  }

  setFile(file: string | undefined): void {
    this.#file = file;
  }

  write(record: AuditRecord): void {
    if (this.throttle?.suppress(record) === true) return;
    const line = JSON.stringify({ time: new Date().toISOString(), helper: process.pid, ...record }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    process.stderr.write(`xkvm-helper: audit ${line}\n`);
    if (this.#file !== undefined) {
      try {
        appendFileSync(this.#file, `${line}\n`, { mode: 0o640 });
      } catch (error) {
        process.stderr.write(`xkvm-helper: cannot append to audit-log ${this.#file}: ${(error as Error).message}\n`);
      }
    }
  }
}
