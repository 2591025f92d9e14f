/**
 * A real installation of the helper for system tests (root only): refuse when one is already
 * present, `xkvm-helper install --group G` with the real CLI, our policy in /etc/xkvm/helper.conf
 * (whatever was there is kept and put back), and at the end `xkvm-helper uninstall` plus the
 * restoration. A group with a member and a user outside it, for polkit's rule.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { DEFAULT_PATHS } from '../../helper/src/install/paths.js';
import { HELPER_MAIN } from './helper-proc.js';
import { createTestGroup, createTestUser, removeTestGroup, removeTestUser, type TestGroup, type TestUser } from './netns.js';

export const PATHS = DEFAULT_PATHS;
/** Everything install writes that says "installed" (helper.conf may exist without an install). */
export const INSTALLED_FILES = [PATHS.launcher, PATHS.bridgeLauncher, PATHS.action, PATHS.rule, PATHS.socketUnit, PATHS.serviceUnit] as const;

export function requireRoot(what: string): void {
  if (process.geteuid?.() !== 0) throw new Error(`${what} must run as root: it installs the helper into /usr/local, /usr/share, /etc`);
}

/** Throws when a real installation (or a running installed socket) is here: the test would disturb it. */
export function refuseIfInstalled(): void {
  const present = [...INSTALLED_FILES, PATHS.socket].filter((p) => existsSync(p));
  if (present.length > 0) {
    throw new Error(`refusing to run: an installation of the helper is present (${present.join(', ')}); ` +
      'this test installs and uninstalls the real files. Run `xkvm-helper uninstall` (and stop xkvm-helper.socket) first, or run it on a scratch machine');
  }
}

export interface GroupWithMember {
  readonly group: TestGroup;
  readonly member: TestUser;
  readonly outsider: TestUser;
  /** Removes the group and both users (the suite's `after`). */
  remove(): void;
}

/** A new group with a new ordinary user in it and another one not, all this test process's. */
export function groupWithMember(): GroupWithMember {
  const member = createTestUser('m');
  const outsider = createTestUser('n');
  const group = createTestGroup('g', [member]);
  return {
    group, member, outsider,
    remove() {
      removeTestGroup(group);
      removeTestUser(member);
      removeTestUser(outsider);
    },
  };
}

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node dist/helper/src/main.js ARGS` (package.json's bin `xkvm-helper`) as root. */
export function helperCli(args: readonly string[]): CliResult {
  const r = spawnSync(process.execPath, [HELPER_MAIN, ...args], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

interface Saved {
  readonly dirExisted: boolean;
  readonly file: { content: Buffer; mode: number; uid: number; gid: number } | undefined;
}

/** What /etc/xkvm/helper.conf was before the test, to put back afterwards. */
export function savePolicy(): Saved {
  const dirExisted = existsSync(PATHS.config.replace(/\/[^/]+$/, ''));
  if (!existsSync(PATHS.config)) return { dirExisted, file: undefined };
  const st = lstatSync(PATHS.config);
  return { dirExisted, file: { content: readFileSync(PATHS.config), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } };
}

export function writePolicy(lines: readonly string[]): void {
  writeFileSync(PATHS.config, `${lines.join('\n')}\n`, { mode: 0o644 });
  chmodSync(PATHS.config, 0o644);
  chownSync(PATHS.config, 0, 0);
}

function restorePolicy(saved: Saved): void {
  if (saved.file !== undefined) {
    writeFileSync(PATHS.config, saved.file.content);
    chownSync(PATHS.config, saved.file.uid, saved.file.gid);
    chmodSync(PATHS.config, saved.file.mode);
    return;
  }
  rmSync(PATHS.config, { force: true });
  const dir = PATHS.config.replace(/\/[^/]+$/, '');
  if (!saved.dirExisted && existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
}

/** Best effort at the end: uninstall if anything is left, put the policy back. */
export function tearDown(saved: Saved | undefined): void {
  if (INSTALLED_FILES.some((p) => existsSync(p))) helperCli(['uninstall']);
  if (saved !== undefined) restorePolicy(saved);
}
