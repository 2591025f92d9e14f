/**
 * Session state on disk (default /run/xkvm/sessions): one JSON file per session naming the
 * client process (pid and start time), the helper serving it (pid and start time) and its taps.
 * A helper that crashes leaves the files behind; the next helper to start keeps the taps of
 * clients still running and removes those of clients that are gone (docs/protocol.md, invariant 4).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Nic } from '../../../shared/src/protocol/messages.js';
import { isValidIfname } from '../../../shared/src/protocol/names.js';
import { DEFAULT_STATE_DIR } from '../defaults.js';

export interface ProcessRef {
  pid: number;
  start: string;
}

export interface SessionRecord {
  version: 1;
  id: string;
  uid: number;
  client: ProcessRef;
  helper: ProcessRef;
  nics: Nic[];
}

function isRecord(value: unknown): value is SessionRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<SessionRecord>;
  const ref = (p: unknown): boolean => typeof p === 'object' && p !== null
    && Number.isInteger((p as ProcessRef).pid) && typeof (p as ProcessRef).start === 'string';
  return r.version === 1 && typeof r.id === 'string' && /^[0-9a-f]{16}$/.test(r.id) && Number.isInteger(r.uid)
    && ref(r.client) && ref(r.helper) && Array.isArray(r.nics)
    && r.nics.every((n) => isValidIfname(n?.bridge) && isValidIfname(n?.tap) && (n.type === 'brctl' || n.type === 'ovs'));
}

export class SessionStore {
  readonly dir: string;

  constructor(dir: string = DEFAULT_STATE_DIR) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  newId(): string {
    return randomBytes(8).toString('hex');
  }

  /**
   * Write a record atomically (a temporary file renamed over it). Synchronously: on the thread
   * pool the four system calls cost more in hand-offs than they take (measured: more helper CPU
   * a request and slower replies under 16 concurrent sessions).
   */
  write(record: SessionRecord): void {
    const file = join(this.dir, `${record.id}.json`);
    const temp = `${file}.tmp`;
    writeFileSync(temp, JSON.stringify(record), { mode: 0o600 });
    renameSync(temp, file);
  }

  /** Remove a record. One already gone is fine; any other failure is thrown, for the caller to report. */
  remove(id: string): void {
    try {
      unlinkSync(join(this.dir, `${id}.json`));
    } catch (error) {
      if ((error as NodeJS.ErrnoException | null)?.code !== 'ENOENT') throw error;
    }
  }

  /** Every readable record; unreadable or malformed files are reported, not trusted. */
  list(onBad: (file: string) => void = () => {}): SessionRecord[] {
    const out: SessionRecord[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const value: unknown = JSON.parse(readFileSync(join(this.dir, name), 'utf8'));
        if (isRecord(value) && `${value.id}.json` === name) out.push(value);
        else onBad(name);
      } catch {
        onBad(name);
      }
    }
    return out;
  }
}
