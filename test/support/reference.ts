// The conformance corpus (test/conformance/cases.json + expectations.json) and what is needed to
// run the reference xkvm the way test/conformance/make-expectations.sh does: the fixture, the
// namespace layout, and the reading of its quote_cmd line. Keep buildReferenceFixture() and
// REFERENCE_NETNS in step with make-expectations.sh, and the quote_cmd parser in step with
// test/conformance/expectations-tool.mjs (reference.test.ts checks that both agree).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Netns, TestUser } from './netns.js';

/** The repository root (this file runs from dist/test/support/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CONFORMANCE_DIR = join(REPO_ROOT, 'test', 'conformance');
/** Where the reference lives relative to the repository root (shared/ sits beside checkouts). */
const REFERENCE_RELATIVE = '../shared/reference/xkvm';

export const QEMU = '/usr/bin/qemu-system-x86_64';
const QEMU_IMG = '/usr/bin/qemu-img';
const GETOPT = '/usr/bin/getopt';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS.fd';

/** Bridges of each namespace a case can ask for ("netns" in cases.json). */
export const REFERENCE_NETNS = {
  main: ['br0', 'br1'],
  virbr0: ['br0', 'br1', 'virbr0'],
} as const;
export type NetnsKind = keyof typeof REFERENCE_NETNS;

export interface Case {
  readonly name: string;
  readonly args: readonly string[];
  readonly random?: true;
  readonly env?: Readonly<Record<string, string>>;
  readonly netns?: NetnsKind;
  readonly note?: string;
}

interface NvramState {
  readonly path: string;
  readonly before: string;
  readonly after: string;
}

export interface Expectation {
  readonly name: string;
  readonly args: readonly string[];
  readonly random?: true;
  readonly env?: Readonly<Record<string, string>>;
  readonly netns?: NetnsKind;
  readonly status: number;
  readonly stdout: readonly string[];
  readonly stderr: readonly string[];
  readonly argv: readonly string[] | null;
  readonly nvram?: NvramState;
}

export interface Expectations {
  readonly generated_by: string;
  readonly reference: string;
  readonly reference_sha256: string;
  readonly qemu_version: string;
  readonly fixture_dir: string;
  readonly cases: readonly Expectation[];
}

// --- loading (validated: the JSON is data written by other programs) ---------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}
function isStringRecord(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}
function fail(file: string, what: string): never {
  throw new Error(`${file}: ${what}`);
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8'));
}

function toCase(file: string, v: unknown, i: number): Case {
  if (!isObject(v)) fail(file, `case #${i} is not an object`);
  const { name, args, random, env, netns, note } = v;
  if (typeof name !== 'string') fail(file, `case #${i} has no name`);
  if (!isStringArray(args)) fail(file, `case ${name}: args must be strings`);
  if (random !== undefined && random !== true) fail(file, `case ${name}: random must be true`);
  if (env !== undefined && !isStringRecord(env)) fail(file, `case ${name}: env must map names to strings`);
  if (netns !== undefined && netns !== 'main' && netns !== 'virbr0') fail(file, `case ${name}: bad netns`);
  if (note !== undefined && typeof note !== 'string') fail(file, `case ${name}: note must be a string`);
  return {
    name,
    args,
    ...(random === true ? { random } : {}),
    ...(env === undefined ? {} : { env }),
    ...(netns === undefined ? {} : { netns }),
    ...(note === undefined ? {} : { note }),
  };
}

export function loadCases(file = join(CONFORMANCE_DIR, 'cases.json')): Case[] {
  const doc = readJson(file);
  if (!isObject(doc) || !Array.isArray(doc['cases'])) fail(file, 'expected {"cases": [...]}');
  return doc['cases'].map((c, i) => toCase(file, c, i));
}

export function loadExpectations(file = join(CONFORMANCE_DIR, 'expectations.json')): Expectations {
  const doc = readJson(file);
  if (!isObject(doc)) fail(file, 'not an object');
  const { generated_by, reference, reference_sha256, qemu_version, fixture_dir, cases } = doc;
  for (const [k, v] of Object.entries({ generated_by, reference, reference_sha256, qemu_version, fixture_dir })) {
    if (typeof v !== 'string') fail(file, `${k} must be a string`);
  }
  if (!Array.isArray(cases)) fail(file, 'cases must be an array');
  const out = cases.map((v, i): Expectation => {
    const base = toCase(file, v, i);
    if (!isObject(v)) fail(file, `case #${i} is not an object`);
    const { status, stdout, stderr, argv, nvram } = v;
    if (typeof status !== 'number' || !Number.isInteger(status)) fail(file, `case ${base.name}: bad status`);
    if (!isStringArray(stdout) || !isStringArray(stderr)) fail(file, `case ${base.name}: stdout/stderr must be lines`);
    if (argv !== null && !isStringArray(argv)) fail(file, `case ${base.name}: argv must be null or strings`);
    let nv: NvramState | undefined;
    if (nvram !== undefined) {
      if (!isStringRecord(nvram)) fail(file, `case ${base.name}: bad nvram`);
      const { path, before, after } = nvram;
      if (path === undefined || before === undefined || after === undefined) fail(file, `case ${base.name}: bad nvram`);
      nv = { path, before, after };
    }
    const { note: _note, ...rest } = base;
    return { ...rest, status, stdout, stderr, argv, ...(nv === undefined ? {} : { nvram: nv }) };
  });
  return {
    generated_by: generated_by as string,
    reference: reference as string,
    reference_sha256: reference_sha256 as string,
    qemu_version: qemu_version as string,
    fixture_dir: fixture_dir as string,
    cases: out,
  };
}

// --- the reference's quote_cmd -----------------------------------------------------------------

/** What the reference's quote_cmd prints for argv (without echo's newline). */
export function quoteCmd(argv: readonly string[]): string {
  let line = '';
  for (const word of argv) {
    let x = word;
    if (x.includes(' ')) x = x.includes('"') ? `'${x}'` : `"${x}"`;
    line += ` ${x}`;
  }
  return line;
}

/**
 * Splits a quote_cmd line back into the argv it came from. quote_cmd joins words with one space,
 * wraps a word holding a space in "..." (in '...' when it also holds a double quote) and leaves
 * every other word alone: a quoted word spans at least two space-separated pieces, "..." content
 * never holds a double quote, '...' content always does. The result must re-quote to the line.
 */
export function splitQuoteCmd(line: string): string[] {
  if (!line.startsWith(' ')) throw new Error(`not a quote_cmd line (no leading space): ${JSON.stringify(line)}`);
  const pieces = line.slice(1).split(' ');
  const out: string[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i] ?? '';
    const q = p[0];
    let taken = false;
    if (q === '"' || q === "'") {
      for (let j = i + 1; j < pieces.length; j++) {
        const last = pieces[j] ?? '';
        if (last.endsWith(q)) {
          const inner = [p.slice(1), ...pieces.slice(i + 1, j), last.slice(0, -1)].join(' ');
          if (q === '"' ? !inner.includes('"') : inner.includes('"')) {
            out.push(inner);
            i = j;
            taken = true;
            break;
          }
        }
        if (q === '"' && last.includes('"')) break;
      }
    }
    if (!taken) out.push(p);
  }
  if (quoteCmd(out) !== line) throw new Error(`quote_cmd line does not round-trip: ${JSON.stringify(line)}`);
  return out;
}

/** The stderr line holding the qemu command: quote_cmd output (one leading space) with -enable-kvm. */
export function findQemuLine(lines: readonly string[]): string | null {
  const hits = lines.filter((l) => /^ [^ ]/.test(l) && splitQuoteCmd(l).includes('-enable-kvm'));
  if (hits.length > 1) throw new Error(`more than one qemu command line:\n${hits.join('\n')}`);
  return hits[0] ?? null;
}

export function toLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

// --- getopt, as the reference calls it ---------------------------------------------------------

const SHORT_OPTS = 'hd:n:v';
const LONG_OPTS = 'bios:,help,dowait,disk:,dry-run,kvm:,no-dowait,netdev:,uefi,uefi-nvram:,verbose';

/** Splits getopt(1)'s output: words separated by spaces, each '...'-quoted, ' written as '\''. */
function splitGetoptOutput(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  const s = text.trim();
  while (i < s.length) {
    while (s[i] === ' ') i++;
    if (i >= s.length) break;
    let word = '';
    while (i < s.length && s[i] !== ' ') {
      if (s[i] === "'") {
        const end = s.indexOf("'", i + 1);
        if (end < 0) throw new Error(`unterminated quote in getopt output: ${text}`);
        word += s.slice(i + 1, end);
        i = end + 1;
      } else if (s[i] === '\\') {
        word += s[i + 1] ?? '';
        i += 2;
      } else {
        word += s[i];
        i++;
      }
    }
    out.push(word);
  }
  return out;
}

/** The --uefi-nvram value the reference would use for args (the last one), if any. */
export function nvramArgument(args: readonly string[]): string | undefined {
  const r = spawnSync(GETOPT, ['-q', '--name', 'xkvm', '--options', SHORT_OPTS, '--long', LONG_OPTS, '--', ...args], {
    encoding: 'utf8',
    env: { LC_ALL: 'C' },
  });
  if (r.status !== 0) return undefined;
  const words = splitGetoptOutput(r.stdout);
  let found: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === '--') break;
    if (w === '--uefi-nvram') found = words[i + 1] ?? '';
    if (w !== undefined && ['--uefi-nvram', '-d', '--disk', '-n', '--netdev', '--kvm', '--bios'].includes(w)) i++;
  }
  return found;
}

// --- running the reference ---------------------------------------------------------------------

/** The reference's absolute path, or undefined when this checkout has no shared/ beside it. */
export function findReference(): string | undefined {
  const p = resolve(REPO_ROOT, REFERENCE_RELATIVE);
  return existsSync(p) ? realpathSync(p) : undefined;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** What is missing on this machine to run the reference as make-expectations.sh does. */
export function missingForReference(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root privileges (network namespaces, runuser)');
  if (findReference() === undefined) missing.push(`the reference xkvm (${resolve(REPO_ROOT, REFERENCE_RELATIVE)})`);
  if (!existsSync(QEMU)) missing.push(`${QEMU} (package qemu-system-x86)`);
  if (!existsSync(QEMU_IMG)) missing.push(`${QEMU_IMG} (package qemu-utils)`);
  if (!existsSync(OVMF_VARS)) missing.push(`${OVMF_VARS} (package ovmf)`);
  if (!existsSync(GETOPT)) missing.push(`${GETOPT} (package util-linux)`);
  return missing;
}

function qemuImg(...args: string[]): void {
  const r = spawnSync(QEMU_IMG, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-img ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
}

/**
 * Fills dir (which must exist and be empty) with the files the cases use, as make-expectations.sh
 * does: disk.qcow2, disk.raw, disk1.img, images/root.qcow2, "my disk.qcow2", vars.fd (0644),
 * vars-ro.fd (0444), all the user's; secret.img root's and 0600. dir itself becomes the user's.
 */
export function buildReferenceFixture(dir: string, user: TestUser): void {
  mkdirSync(join(dir, 'images'), { mode: 0o755 });
  qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'disk.qcow2'), '64M');
  qemuImg('create', '-q', '-f', 'raw', join(dir, 'disk.raw'), '16M');
  qemuImg('create', '-q', '-f', 'raw', join(dir, 'disk1.img'), '1M');
  qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'images', 'root.qcow2'), '64M');
  qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'my disk.qcow2'), '16M');
  copyFileSync(OVMF_VARS, join(dir, 'vars.fd'));
  copyFileSync(OVMF_VARS, join(dir, 'vars-ro.fd'));
  for (const p of ['.', 'images', 'disk.qcow2', 'disk.raw', 'disk1.img', 'images/root.qcow2', 'my disk.qcow2',
    'vars.fd', 'vars-ro.fd']) {
    chownSync(join(dir, p), user.uid, user.gid);
  }
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'vars.fd'), 0o644);
  chmodSync(join(dir, 'vars-ro.fd'), 0o444);
  qemuImg('create', '-q', '-f', 'raw', join(dir, 'secret.img'), '1M');
  chmodSync(join(dir, 'secret.img'), 0o600);
}

function fileKind(given: string, resolved: string): string {
  if (given === '') return 'empty-path';
  try {
    const st = lstatSync(resolved);
    if (st.isSymbolicLink()) return 'symlink';
    if (st.isFile()) return 'file';
    if (st.isDirectory()) return 'directory';
    return 'other';
  } catch {
    return 'missing';
  }
}

export interface ReferenceRun {
  readonly status: number;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly argv: string[] | null;
  readonly nvram?: NvramState;
}

/**
 * Runs one case through the reference in ns (whose bridges must match the case's "netns") as
 * user, cwd = fixtureDir (a fresh buildReferenceFixture() directory), stdin /dev/null.
 */
export function runReferenceCase(ns: Netns, c: Case, user: TestUser, fixtureDir: string, reference: string): ReferenceRun {
  const nv = nvramArgument(c.args);
  const nvResolved = nv === undefined ? '' : isAbsolute(nv) ? nv : join(fixtureDir, nv);
  const before = nv === undefined ? '' : fileKind(nv, nvResolved);
  const r = ns.exec([reference, ...c.args], {
    user: user.name,
    cwd: fixtureDir,
    ...(c.env === undefined ? {} : { env: c.env }),
    timeoutMs: 60_000,
  });
  if (r.timedOut || r.status === null) throw new Error(`case ${c.name}: the reference did not finish (${r.signal ?? 'timeout'})`);
  const stderr = toLines(r.stderr);
  const line = findQemuLine(stderr);
  return {
    status: r.status,
    stdout: toLines(r.stdout),
    stderr,
    argv: line === null ? null : splitQuoteCmd(line),
    ...(nv === undefined ? {} : { nvram: { path: nv, before, after: fileKind(nv, nvResolved) } }),
  };
}
