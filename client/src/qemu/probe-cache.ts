/**
 * Device-property probes cost a qemu start each, so their results are kept per qemu binary in
 * the user's cache directory, keyed by the binary's real path, size, mtime and inode so that an
 * upgraded qemu is probed afresh.
 */
import { realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, JsonCacheFile } from '../cache/json-file.js';

const FORMAT = 1;

interface CacheData {
  format: number;
  binaries: Record<string, { key: string; models: Record<string, string[]> }>;
}

/** @internal Exported for tests of the XDG lookup; ProbeCache uses it when given no file. */
export function defaultCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheDir(env), 'qemu-devices.json');
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

function isCacheData(value: unknown): value is CacheData {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<CacheData>;
  if (v.format !== FORMAT || typeof v.binaries !== 'object' || v.binaries === null || Array.isArray(v.binaries)) return false;
  return Object.values(v.binaries).every((entry) => typeof entry === 'object' && entry !== null
    && typeof entry.key === 'string' && typeof entry.models === 'object' && entry.models !== null && !Array.isArray(entry.models)
    && Object.values(entry.models).every((list) => Array.isArray(list) && list.every((n) => typeof n === 'string')));
}

export class ProbeCache {
  readonly #file: JsonCacheFile<CacheData>;

  constructor(file: string = defaultCacheFile()) {
    this.#file = new JsonCacheFile(file, isCacheData, () => ({ format: FORMAT, binaries: Object.create(null) as CacheData['binaries'] }));
  }

  get(binary: string, model: string): string[] | undefined {
    const id = binaryIdentity(binary);
    if (id === undefined) return undefined;
    const entry = this.#file.data.binaries[id.path];
    if (entry === undefined || entry.key !== id.key) return undefined;
    return Object.hasOwn(entry.models, model) ? entry.models[model] : undefined;
  }

  set(binary: string, model: string, properties: string[]): void {
    const id = binaryIdentity(binary);
    if (id === undefined) return;
    const data = this.#file.data;
    let entry = data.binaries[id.path];
    if (entry === undefined || entry.key !== id.key) {
      entry = { key: id.key, models: Object.create(null) as Record<string, string[]> };
      data.binaries[id.path] = entry;
    }
    entry.models[model] = properties;
    this.#file.markDirty();
  }

  /** Write the cache if it changed. */
  save(): void {
    this.#file.save();
  }
}
