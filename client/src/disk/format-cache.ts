/**
 * Image formats as qemu-img last reported them, keyed by the image's real path and its device,
 * inode, size, mtime and ctime: any write to the image changes the key, so a stale format is
 * never used. Saves one qemu-img start per disk on every launch after the first.
 */
import { realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, JsonCacheFile } from '../cache/json-file.js';
import type { FormatDetector } from './image-format.js';

const FORMAT = 1;
const MAX_ENTRIES = 256;

interface CacheData {
  format: number;
  images: Record<string, { key: string; format: string }>;
}

function isCacheData(value: unknown): value is CacheData {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<CacheData>;
  return v.format === FORMAT && typeof v.images === 'object' && v.images !== null && !Array.isArray(v.images)
    && Object.values(v.images).every((e) => typeof e === 'object' && e !== null && typeof e.key === 'string' && typeof e.format === 'string');
}

function imageIdentity(path: string): { path: string; key: string } | undefined {
  try {
    const real = realpathSync(path);
    const st = statSync(real, { bigint: true });
    return { path: real, key: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` };
  } catch {
    return undefined;
  }
}

export class FormatCache {
  readonly #file: JsonCacheFile<CacheData>;

  constructor(file: string = join(cacheDir(), 'image-formats.json')) {
    this.#file = new JsonCacheFile(file, isCacheData, () => ({ format: FORMAT, images: Object.create(null) as CacheData['images'] }));
  }

  /** A detector that answers from the cache when the image is unchanged, else asks `detect`. */
  wrap(detect: FormatDetector): FormatDetector {
    return async (path) => {
      const id = imageIdentity(path);
      const images = this.#file.data.images;
      const hit = id === undefined ? undefined : images[id.path];
      if (id !== undefined && hit !== undefined && hit.key === id.key) return hit.format;
      const format = await detect(path);
      if (id !== undefined) {
        const names = Object.keys(images);
        if (names.length >= MAX_ENTRIES) delete images[names[0]!];
        images[id.path] = { key: id.key, format };
        this.#file.markDirty();
      }
      return format;
    };
  }

  save(): void {
    this.#file.save();
  }
}
