/**
 * Device-property probes cost a qemu start each, so their results are kept per qemu binary in
 * the user's cache directory, keyed by the binary's real path, size, mtime and inode so that an
 * upgraded qemu is probed afresh. A missing, unreadable or malformed cache is ignored.
 */
import { mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const FORMAT = 1;

interface CacheFile {
  format: number;
  binaries: Record<string, { key: string; models: Record<string, string[]> }>;
}

export function defaultCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CACHE_HOME'] || join(env['HOME'] || homedir(), '.cache');
  return join(base, 'xkvm', 'qemu-devices.json');
}

function binaryIdentity(binary: string): { path: string; key: string } | undefined {
  try {
    const path = realpathSync(binary);
    const st = statSync(path, { bigint: true });
    return { path, key: `${st.size}:${st.mtimeNs}:${st.ino}` };
  } catch {
    return undefined;
  }
}

function isCacheFile(value: unknown): value is CacheFile {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<CacheFile>;
  if (v.format !== FORMAT || typeof v.binaries !== 'object' || v.binaries === null) return false;
  return Object.values(v.binaries).every((entry) => typeof entry === 'object' && entry !== null
    && typeof entry.key === 'string' && typeof entry.models === 'object' && entry.models !== null
    && Object.values(entry.models).every((list) => Array.isArray(list) && list.every((n) => typeof n === 'string')));
}

export class ProbeCache {
  readonly #file: string;
  #data: CacheFile | undefined;
  #dirty = false;

  constructor(file: string = defaultCacheFile()) {
    this.#file = file;
  }

  #load(): CacheFile {
    if (this.#data !== undefined) return this.#data;
    let data: CacheFile = { format: FORMAT, binaries: Object.create(null) as CacheFile['binaries'] };
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.#file, 'utf8'));
      if (isCacheFile(parsed)) data = parsed;
    } catch {
      // no cache yet, or unreadable: start afresh
    }
    this.#data = data;
    return data;
  }

  get(binary: string, model: string): string[] | undefined {
    const id = binaryIdentity(binary);
    if (id === undefined) return undefined;
    const entry = this.#load().binaries[id.path];
    if (entry === undefined || entry.key !== id.key) return undefined;
    return Object.hasOwn(entry.models, model) ? entry.models[model] : undefined;
  }

  set(binary: string, model: string, properties: string[]): void {
    const id = binaryIdentity(binary);
    if (id === undefined) return;
    const data = this.#load();
    let entry = data.binaries[id.path];
    if (entry === undefined || entry.key !== id.key) {
      entry = { key: id.key, models: Object.create(null) as Record<string, string[]> };
      data.binaries[id.path] = entry;
    }
    entry.models[model] = properties;
    this.#dirty = true;
  }

  /** Write the cache if it changed (atomically: a temp file renamed over the old one). */
  save(): void {
    if (!this.#dirty || this.#data === undefined) return;
    try {
      mkdirSync(dirname(this.#file), { recursive: true, mode: 0o700 });
      const temp = `${this.#file}.${process.pid}.tmp`;
      writeFileSync(temp, JSON.stringify(this.#data), { mode: 0o600 });
      renameSync(temp, this.#file);
      this.#dirty = false;
    } catch {
      // a cache that cannot be written only costs time
    }
  }
}
