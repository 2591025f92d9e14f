import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InstallError } from '../../../helper/src/install/errors.js';
import { pathsUnder, type InstallPaths } from '../../../helper/src/install/paths.js';
import type { GetentRunner } from '../../../helper/src/userdb/getent.js';

/** The checkout these tests were compiled in. */
export const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

/** A scratch folder (mode 0700, root's when run as root); `done()` removes it. */
export function scratch(prefix: string, parent: string = tmpdir()): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(parent, `xkvm-install-${prefix}-`));
  chmodSync(dir, 0o700);
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Every install path under a fresh scratch root. */
export function scratchInstall(): { root: string; paths: InstallPaths; done: () => void } {
  const s = scratch('root');
  return { root: s.dir, paths: pathsUnder(s.dir), done: s.done };
}

/**
 * Where fake checkouts go by default: not /tmp, which the service unit's PrivateTmp=yes hides
 * (install refuses code there).
 */
const CODE_PARENT = '/run';

/** The main module this file is (relative path inside the checkout) prints, as JSON. */
const STUB_MAIN = [
  'console.log(JSON.stringify({ uid: process.getuid(), euid: process.geteuid(),',
  '  pkexecUid: process.env.PKEXEC_UID ?? null, argv: process.argv.slice(2) }));',
  '',
].join('\n');

/**
 * A tiny checkout laid out like the real one (package.json, dist/helper/src/main.js, dist/shared,
 * helper/native/build, node_modules), everything root-owned 0755/0644, whose main prints what it sees.
 */
export function fakeCheckout(parent = CODE_PARENT): { dir: string; main: string; write: (rel: string, text: string, mode?: number) => string; done: () => void } {
  const s = scratch('checkout', parent);
  chmodSync(s.dir, 0o755);
  const write = (rel: string, text: string, mode = 0o644): string => {
    const path = join(s.dir, rel);
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };
  write('package.json', '{ "type": "module", "private": true }\n');
  const main = write('dist/helper/src/main.js', STUB_MAIN);
  write('dist/shared/src/protocol/frame.js', 'export {};\n');
  write('helper/native/build/Release/peercred.node', 'not really an addon\n');
  write('node_modules/msgpackr/index.js', 'export {};\n');
  return { dir: s.dir, main, write, done: s.done };
}

/** getent that knows only these groups (name → members). */
export function fakeGetent(groups: Record<string, readonly string[]>): GetentRunner {
  return async (database, keys) => {
    if (database !== 'group') return '';
    return keys.flatMap((k, i) => (k in groups ? [`${k}:x:${2000 + i}:${(groups[k] ?? []).join(',')}`] : [])).join('\n');
  };
}

/** The InstallError `fn` rejects or throws with (fails if it throws nothing or something else). */
export async function installError(fn: () => unknown): Promise<InstallError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof InstallError) return err;
    throw err;
  }
  throw new Error('expected an InstallError, nothing was thrown');
}

export function read(path: string): string {
  return readFileSync(path, 'utf8');
}

export function mode(path: string): number {
  return statSync(path).mode & 0o7777;
}

/** Every path under `dir` (files and folders), relative, sorted; [] if it does not exist. */
export function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const r = spawnSync('find', [dir, '-mindepth', '1', '-printf', '%P\\n'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l !== '').sort();
}

/** Setting lines (not comments, not blank) of a unit file, as "Key=value". */
export function unitSettings(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('['));
}
