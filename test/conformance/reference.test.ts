// Checks the conformance corpus itself, without our client: cases.json and expectations.json agree,
// the recorded results are coherent, and the real reference still gives the recorded results for
// a few representative cases (run as make-expectations.sh runs them). Needs root, qemu and the
// reference; when something is missing the tests FAIL naming it.
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, createTestUser, missingTools, removeTestUser, type Netns, type TestUser } from '../support/netns.js';
import {
  QEMU, REFERENCE_NETNS, buildReferenceFixture, findQemuLine, findReference, loadCases, loadExpectations,
  missingForReference, quoteCmd, runReferenceCase, sha256File, splitQuoteCmd,
  type Case, type Expectation, type NetnsKind,
} from '../support/reference.js';

/** One case per kind of path: probing + taps + qemu-img; the nvram copy side effect; a getopt error. */
const RERUN = ['combined-bridge-user-disk-tokens', 'uefi-nvram-missing-is-copied', 'getopt-unknown-long-option'];

const cases = loadCases();
const expectations = loadExpectations();
const byName = new Map(expectations.cases.map((e) => [e.name, e]));

function expectationOf(c: Case): Expectation {
  const e = byName.get(c.name);
  if (e === undefined) throw new Error(`case ${c.name} has no expectation: rerun make-expectations.sh`);
  return e;
}

function isHelp(e: Expectation): boolean {
  return e.stdout[0]?.startsWith('Usage: ') === true;
}

/** The words the qemu command starts with: the --kvm value split on spaces, or the default. */
function qemuWords(args: readonly string[]): string[] {
  const end = args.indexOf('--');
  const opts = end < 0 ? args : args.slice(0, end);
  let kvm: string | undefined;
  opts.forEach((a, i) => {
    if (a === '--kvm') kvm = opts[i + 1];
    else if (a.startsWith('--kvm=')) kvm = a.slice('--kvm='.length);
  });
  return kvm === undefined ? ['qemu-system-x86_64'] : kvm.split(' ').filter((w) => w !== '');
}

test('case names in cases.json are unique', () => {
  assert.is(new Set(cases.map((c) => c.name)).size, cases.length);
});

test('every case in cases.json has exactly one expectation, in the same order, with the same inputs', () => {
  assert.equal(expectations.cases.map((e) => e.name), cases.map((c) => c.name));
  for (const c of cases) {
    const e = expectationOf(c);
    assert.equal(e.args, c.args, `args of ${c.name}`);
    assert.equal(e.env, c.env, `env of ${c.name}`);
    assert.is(e.netns, c.netns, `netns of ${c.name}`);
    assert.is(e.random, c.random, `random flag of ${c.name}`);
  }
});

test('every case but the help requests asks for a dry run', () => {
  for (const c of cases) {
    const dry = c.args.slice(0, c.args.includes('--') ? c.args.indexOf('--') : undefined)
      .some((a) => a === '--dry-run' || a === '--dry' || a.startsWith('--dry-run='));
    const help = c.args.some((a) => a === '-h' || a === '--help' || a === '--he');
    assert.ok(dry || help || expectationOf(c).status !== 0, `${c.name} would run qemu for real`);
  }
});

test('every case that succeeds and is not a help request records a qemu argv that starts with the qemu binary', () => {
  for (const c of cases) {
    const e = expectationOf(c);
    if (e.status !== 0 || isHelp(e)) continue;
    assert.ok(e.argv !== null, `${c.name} succeeded without a qemu command line`);
    const words = qemuWords(c.args);
    assert.equal(e.argv.slice(0, words.length + 1), [...words, '-enable-kvm'], `start of ${c.name}'s argv`);
  }
});

test('the qemu argv of the default binary is qemu-system-x86_64 in every case without --kvm', () => {
  const plain = expectations.cases.filter((e) => e.argv !== null && !e.args.some((a) => a.startsWith('--kvm')));
  assert.ok(plain.length > 100, `only ${plain.length} such cases`);
  for (const e of plain) assert.is(e.argv?.[0], 'qemu-system-x86_64', e.name);
});

test('a failing case records no qemu argv, and a help request prints the usage on stdout only', () => {
  for (const e of expectations.cases) {
    if (e.status !== 0) assert.is(e.argv, null, `${e.name} failed but has an argv`);
    if (isHelp(e)) {
      assert.is(e.status, 0, e.name);
      assert.is(e.argv, null, e.name);
      assert.equal(e.stderr, [], `${e.name} wrote to stderr`);
    } else {
      assert.equal(e.stdout, [], `${e.name} wrote to stdout`);
    }
  }
});

test('the recorded argv is what the quote_cmd line in the recorded stderr splits into', () => {
  for (const e of expectations.cases) {
    const line = findQemuLine(e.stderr);
    assert.equal(line === null ? null : splitQuoteCmd(line), e.argv, e.name);
    if (e.argv !== null) assert.ok(e.stderr.includes(quoteCmd(e.argv)), `${e.name}: requoting does not give the line`);
  }
});

test('quote_cmd lines with spaces and quotes split back into the original words', () => {
  const argv = ['qemu', '-enable-kvm', '-append', 'a b', '-name', 'my "vm"', '', '"x"', "it's", '-m', '1'];
  assert.equal(splitQuoteCmd(quoteCmd(argv)), argv);
  assert.equal(splitQuoteCmd(' a "b c" \'d "e"\''), ['a', 'b c', 'd "e"']);
});

test('every case that passes --uefi-nvram records the nvram file before and after', () => {
  for (const c of cases) {
    const e = expectationOf(c);
    const opts = c.args.slice(0, c.args.includes('--') ? c.args.indexOf('--') : undefined);
    const uses = opts.some((a) => a.startsWith('--uefi-n'));
    const parsed = e.status === 0 || !e.stderr.some((l) => l.startsWith('xkvm: '));
    if (uses && parsed) assert.ok(e.nvram !== undefined, `${c.name} has no nvram record`);
    if (!uses) assert.is(e.nvram, undefined, `${c.name} has an nvram record`);
  }
});

test('a missing --uefi-nvram file is created even in a dry run, but not when --bios makes it fail first', () => {
  const copied = byName.get('uefi-nvram-missing-is-copied');
  assert.equal(copied?.nvram, { path: 'new-vars.fd', before: 'missing', after: 'file' });
  assert.equal(byName.get('bios-with-uefi-nvram-error')?.nvram, { path: 'new-vars.fd', before: 'missing', after: 'missing' });
});

test('random cases are the only ones using mac=random', () => {
  for (const c of cases) {
    assert.is(c.random === true, c.args.some((a) => /(^|,)mac(addr)?=random(,|$)/.test(a)), c.name);
  }
});

test('a random MAC keeps the 52:54:00 prefix and only its last three octets vary', () => {
  const random = expectations.cases.filter((e) => e.random === true);
  assert.ok(random.length >= 1);
  for (const e of random) {
    const macs = (e.argv ?? []).join(' ').match(/mac=[0-9a-f:]+/g) ?? [];
    assert.ok(macs.length >= 1, `${e.name} has no mac`);
    for (const m of macs) assert.match(m, /^mac=52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/, e.name);
  }
});

// --- re-run through the real reference ---------------------------------------------------------

interface Rig {
  readonly user: TestUser;
  readonly reference: string;
  readonly ns: Map<NetnsKind, Netns>;
}
let rig: Rig | undefined;

function requireMachine(): Rig {
  if (rig !== undefined) return rig;
  const missing = [...missingForReference(), ...missingTools()];
  if (missing.length > 0) {
    throw new Error(`cannot re-run the reference here; missing: ${missing.join('; ')}`);
  }
  const reference = findReference();
  if (reference === undefined) throw new Error('the reference xkvm is missing');
  rig = { user: createTestUser('ref'), reference, ns: new Map() };
  return rig;
}

function netnsFor(r: Rig, kind: NetnsKind): Netns {
  let ns = r.ns.get(kind);
  if (ns === undefined) {
    ns = createNetns({ bridges: REFERENCE_NETNS[kind] });
    r.ns.set(kind, ns);
  }
  return ns;
}

test('the expectations were recorded from the reference and the qemu installed here', () => {
  const r = requireMachine();
  assert.is(sha256File(r.reference), expectations.reference_sha256,
    `${r.reference} changed since expectations.json was generated: rerun make-expectations.sh`);
  const version = spawnSync(QEMU, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  assert.is(version, expectations.qemu_version, 'qemu changed since expectations.json was generated');
});

for (const name of RERUN) {
  test(`re-running "${name}" through the reference now gives the recorded result`, () => {
    const r = requireMachine();
    const c = cases.find((x) => x.name === name);
    assert.ok(c !== undefined, `${name} is not in cases.json`);
    assert.ok(c.random !== true, `${name} is random`);
    const e = expectationOf(c);
    // the fixture lives elsewhere than at generation time: the case must not print its path
    const recorded = JSON.stringify([e.stdout, e.stderr, e.argv]);
    assert.not.ok(recorded.includes(expectations.fixture_dir), `${name}'s output names the fixture directory`);

    const fixture = mkdtempSync(join(tmpdir(), 'xkvm-reference-'));
    try {
      buildReferenceFixture(fixture, r.user);
      const got = runReferenceCase(netnsFor(r, c.netns ?? 'main'), c, r.user, fixture, r.reference);
      const here = (lines: readonly string[]): string[] => lines.map((l) => l.split(expectations.reference).join(r.reference));
      assert.is(got.status, e.status, 'exit status');
      assert.equal(got.stdout, e.stdout, 'stdout');
      assert.equal(got.stderr, here(e.stderr), 'stderr');
      assert.equal(got.argv, e.argv, 'argv');
      assert.equal(got.nvram, e.nvram, 'nvram file');
    } finally {
      rmSync(fixture, { recursive: true, force: true });
    }
  });
}

test.after(() => {
  for (const ns of rig?.ns.values() ?? []) ns.destroy();
  if (rig !== undefined) removeTestUser(rig.user);
});

test.run();
