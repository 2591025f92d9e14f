import { readFileSync, statSync } from 'node:fs';

/**
 * A small local file read through a cache keyed by its inode, size, mtime and ctime: the helper
 * looks up a user for every connection, and a stat costs one system call where a read costs
 * four. Any change to the file (edit, replace, touch) changes the key.
 */
const cache = new Map<string, { key: string; parse: (text: string) => unknown; value: unknown }>();

function keyOf(path: string): string {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false });
  return st === undefined ? 'missing' : `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * `parse` of the file's text ('' when it does not exist), computed again only when the file
 * changed. Read errors other than ENOENT are thrown (and not cached).
 */
export function readCached<T>(path: string, parse: (text: string) => T): T {
  const key = keyOf(path);
  const hit = cache.get(path);
  // The same file read with another parser is another value.
  if (hit !== undefined && hit.key === key && hit.parse === parse) return hit.value as T;
  let text = '';
  if (key !== 'missing') {
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  const value = parse(text);
  cache.set(path, { key, parse, value });
  return value;
}
