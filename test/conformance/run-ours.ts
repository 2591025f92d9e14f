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
