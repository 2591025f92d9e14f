import { randomBytes } from 'node:crypto';
import {
  closeSync, fchmodSync, fchownSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, chmodSync, chownSync, writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Replace `path` atomically: write a new file beside it (same folder, so rename(2) cannot cross
 * file systems), set its mode (and owner) explicitly, whatever the umask, flush it, then rename
 * it over the old one. Readers see the old file or the new one, never half of either; a symlink
 * at `path` is replaced, not followed.
 */
export function writeAtomic(path: string, content: string, mode: number, owner?: Owner): void {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    try {
      if (owner !== undefined) fchownSync(fd, owner.uid, owner.gid);
      fchmodSync(fd, mode);
      const data = Buffer.from(content, 'utf8');
      for (let at = 0; at < data.length;) at += writeSync(fd, data, at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * Make `path` a folder, creating it with `mode` and each missing level above it with 0755 (and
 * the owner); returns the folders created, outermost first. Existing folders are left exactly
 * as they are.
 */
export function ensureDir(path: string, mode: number, owner?: Owner): string[] {
  const missing: string[] = [];
  for (let dir = path; ; dir = dirname(dir)) {
    try {
      if (statSync(dir).isDirectory()) break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing) {
    mkdirSync(dir, { mode: 0o700 });
    if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
    chmodSync(dir, dir === path ? mode : 0o755);
  }
  return missing;
}
