/**
 * A small JSON document in the user's cache directory: read once (a missing, unreadable or
 * malformed file counts as empty), written back atomically (temp file + rename) only if it
 * changed. A cache that cannot be written only costs time.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CACHE_HOME'] || join(env['HOME'] || homedir(), '.cache');
  return join(base, 'xkvm');
}

export class JsonCacheFile<T> {
  readonly #file: string;
  readonly #isValid: (value: unknown) => value is T;
  readonly #empty: () => T;
  #data: T | undefined;
  #dirty = false;

  constructor(file: string, isValid: (value: unknown) => value is T, empty: () => T) {
    this.#file = file;
    this.#isValid = isValid;
    this.#empty = empty;
  }

  get data(): T {
    if (this.#data === undefined) {
      let data = this.#empty();
      try {
        const parsed: unknown = JSON.parse(readFileSync(this.#file, 'utf8'));
        if (this.#isValid(parsed)) data = parsed;
      } catch {
        // no cache yet, or unreadable: start afresh
      }
      this.#data = data;
    }
    return this.#data;
  }

  markDirty(): void {
    this.#dirty = true;
  }

  save(): void {
    if (!this.#dirty || this.#data === undefined) return;
    try {
      mkdirSync(dirname(this.#file), { recursive: true, mode: 0o700 });
      const temp = `${this.#file}.${process.pid}.tmp`;
      writeFileSync(temp, JSON.stringify(this.#data), { mode: 0o600 });
      renameSync(temp, this.#file);
      this.#dirty = false;
    } catch {
      // only costs time
    }
  }
}
