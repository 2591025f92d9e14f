/** Runs one corpus case through this project's client exactly as the reference was run. */
import { join } from 'node:path';
import { shellSplit } from '../support/shell-split.js';
import type { Netns, TestUser } from '../support/netns.js';
import { REPO_ROOT, toLines, type Case } from '../support/reference.js';

const CLIENT_BIN = join(REPO_ROOT, 'dist', 'bin', 'xkvm.cjs');

export interface OurRun {
  status: number;
  stdout: string[];
  stderr: string[];
  /** The qemu command line split back by a POSIX shell, or null when none was printed. */
  argv: string[] | null;
}

/**
 * Whether `user` can open /dev/kvm for reading and writing, which is what decides between
 * `-enable-kvm` and `-accel tcg` (docs/deviations.md #1): asked of a process running as that
 * user in `ns`, exactly where and as whom the cases run xkvm, so the device's mode, owner and
 * group, the user's groups, ACLs and a missing device all count as they will for xkvm.
 */
export function kvmUsableAs(ns: Netns, user: TestUser): boolean {
  const probe = "try { fs.closeSync(fs.openSync('/dev/kvm', 'r+')); } catch (e) { console.log(e.code); process.exit(3); }";
  const r = ns.exec([process.execPath, '-e', probe], { user: user.name, timeoutMs: 60_000 });
  if (r.status === 0) return true;
  // 3: the open failed (ENOENT, EACCES, ...); anything else means the probe itself did not run
  if (r.status === 3) return false;
  throw new Error(`cannot tell whether ${user.name} may use /dev/kvm: the probe exited ${r.status ?? r.signal}: ${r.stderr}`);
}

export function runOurCase(ns: Netns, c: Case, user: TestUser, fixtureDir: string): OurRun {
  const r = ns.exec([process.execPath, CLIENT_BIN, ...c.args], {
    user: user.name,
    cwd: fixtureDir,
    ...(c.env === undefined ? {} : { env: c.env }),
    timeoutMs: 60_000,
  });
  if (r.timedOut || r.status === null) throw new Error(`case ${c.name}: xkvm did not finish (${r.signal ?? 'timeout'})`);
  const stderr = toLines(r.stderr);
  const line = stderr.find((l) => !l.startsWith('xkvm: ') && /(^|\/)qemu-system-|^\S*qemu/.test(l)) ?? null;
  return { status: r.status, stdout: toLines(r.stdout), stderr, argv: line === null ? null : shellSplit(line) };
}
