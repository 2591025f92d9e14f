/**
 * The hidden-corpus check, done here on our own corpus: every case recorded from the reference
 * (test/conformance/expectations.json) is run through `xkvm --dry-run` the same way (ordinary
 * user, a namespace with the same bridges, a fresh fixture) and must give the reference's
 * status and qemu argv, changed only by the rules of test/conformance/deviations.ts, which
 * mirror docs/deviations.md.
 */
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from '../support/netns.js';
import {
  buildReferenceFixture, loadExpectations, missingForReference, nvramArgument, REFERENCE_NETNS, type Expectation,
} from '../support/reference.js';
import { accelRule, CASE_DEVIATIONS, firmwareRule, maskRandomMac, RANDOM_MAC, rngRule } from './deviations.js';
import { kvmUsableAs, runOurCase } from './run-ours.js';

const missing = missingForReference();
const expectations = loadExpectations();
/**
 * The cases name the folder the fixture was recorded in (expectations.fixture_dir and its
 * parent). Each run has a folder of its own, so two runs at the same time never share a fixture,
 * and every case is read with the recorded folder replaced by this run's.
 */
const RECORDED_BASE = dirname(expectations.fixture_dir);
const base = mkdtempSync('/tmp/xkvmc-');
chmodSync(base, 0o755); // the test user works in the fixture below it
const FIXTURE = join(base, basename(expectations.fixture_dir));
const here = (text: string): string => text.split(RECORDED_BASE).join(base);
function relocated(c: Expectation): Expectation {
  return {
    ...c,
    args: c.args.map(here),
    ...(c.env === undefined ? {} : { env: Object.fromEntries(Object.entries(c.env).map(([k, v]) => [k, here(v)])) }),
    stderr: c.stderr.map(here),
    argv: c.argv === null ? null : c.argv.map(here),
  };
}
/** Whether xkvm, run as the test user, gets KVM (decided as that user, not as root). */
let kvm: boolean;
let user: TestUser | undefined;
const nss: Partial<Record<'main' | 'virbr0', Netns>> = {};

test.before(() => {
  if (missing.length > 0) throw new Error(`cannot run the conformance suite: missing ${missing.join(', ')}`);
  user = createTestUser('conf');
  nss.main = createNetns({ bridges: [...REFERENCE_NETNS.main] });
  nss.virbr0 = createNetns({ bridges: [...REFERENCE_NETNS.virbr0] });
  kvm = kvmUsableAs(nss.main, user);
});
test.after(() => {
  nss.main?.destroy();
  nss.virbr0?.destroy();
  rmSync(base, { recursive: true, force: true });
  if (user !== undefined) removeTestUser(user);
});

test('every deviation rule names a case of the corpus', () => {
  const names = new Set(expectations.cases.map((c) => c.name));
  for (const name of Object.keys(CASE_DEVIATIONS)) assert.ok(names.has(name), `deviation for unknown case ${name}`);
});

for (const recorded of expectations.cases) {
  const deviation = CASE_DEVIATIONS[recorded.name];
  test(`${recorded.name}: xkvm ${recorded.args.join(' ')}${deviation ? ` (deviation ${deviation.row})` : ''}`, () => {
    const c = relocated(recorded);
    rmSync(FIXTURE, { recursive: true, force: true });
    mkdirSync(FIXTURE, { recursive: true });
    buildReferenceFixture(FIXTURE, user!);
    const nv = nvramArgument(c.args);
    const nvPath = nv === undefined || nv === '' ? undefined : isAbsolute(nv) ? nv : join(FIXTURE, nv);
    const nvBefore = nvPath !== undefined && existsSync(nvPath);

    const ours = runOurCase(nss[c.netns ?? 'main']!, c, user!, FIXTURE);
    const errorLines = ours.stderr.filter((l) => l.startsWith('xkvm: ') && !/using TCG/.test(l));
    assert.not.ok(ours.stderr.some((l) => /^\s+at /.test(l)), 'no stack trace');
    if (nvPath !== undefined) assert.is(existsSync(nvPath), nvBefore, 'a dry run never creates the nvram file');

    if (deviation?.expect.kind === 'error') {
      assert.is(ours.status, 1, `status; stderr: ${ours.stderr.join(' | ')}`);
      assert.is(ours.argv, null);
      assert.is(errorLines.length, 1, `one error line, got: ${ours.stderr.join(' | ')}`);
      assert.match(errorLines[0]!, deviation.expect.stderr);
      return;
    }
    assert.is(ours.status, c.status, `status; stderr: ${ours.stderr.join(' | ')}`);
    if (c.status !== 0) {
      assert.is(ours.argv, null);
      if (c.argv === null && c.stdout.length === 0) {
        assert.is(errorLines.length, 1, `one error line, got: ${ours.stderr.join(' | ')}`);
      }
      return;
    }
    if (c.argv === null) {
      // -h: usage on stdout, nothing else
      assert.ok(ours.stdout.some((l) => l.startsWith('Usage: ')), 'usage on stdout');
      assert.is(ours.argv, null);
      return;
    }
    // the case's own edit first: its indices are those of the recorded argv, which the
    // accelerator rule shifts by one when it turns -enable-kvm into -accel tcg
    const edited = deviation?.expect.kind === 'argv' ? deviation.expect.edit([...c.argv]) : [...c.argv];
    let expected = rngRule(firmwareRule(accelRule(edited, kvm)));
    let actual = ours.argv;
    assert.ok(actual !== null, `a qemu command line on stderr, got: ${ours.stderr.join(' | ')}`);
    if (c.random) {
      assert.ok(actual!.some((w) => RANDOM_MAC.test(w)), 'a random MAC in 52:54:00');
      actual = maskRandomMac(actual!);
      expected = maskRandomMac(expected);
    }
    assert.equal(actual, expected);
    const tcgLines = ours.stderr.filter((l) => /^xkvm: .*using TCG/.test(l));
    assert.is(tcgLines.length, kvm ? 0 : 1, `lines saying TCG is used: ${ours.stderr.join(' | ')}`);
  });
}

test.run();
