// Bad input is refused by the network layer itself, before it runs any program (invariants 1, 2
// and 6, defence in depth behind the protocol's own checks). A recording runner and ip batch prove it.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import {
  NetError, classifyBridges, createTapsMany, deleteTaps, ovsCleanup, randomTapName, tapInfo, vlanFilteringOf,
  type CreateJob, type IpBatch, type NetDeps, type NetOptions, type Nic, type Runner,
} from '../../../helper/src/net/index.js';
import { MAX_ITEMS_PER_REQUEST } from '../../../shared/src/protocol/limits.js';

function recorder(): { deps: NetDeps; calls: string[][] } {
  const calls: string[][] = [];
  const run: Runner = async (req) => {
    calls.push([req.file, ...req.args]);
    return { exitCode: 0, stdout: '', stderr: '' };
  };
  const batch: IpBatch = async (lines) => {
    calls.push(['ip batch', ...lines]);
    return { ok: true, failedLines: [], stderr: '' };
  };
  return { deps: { run, batch, tapName: randomTapName, vlanFiltering: vlanFilteringOf, openTap: () => { throw new Error('no tap may be opened'); } }, calls };
}

async function refusal(promise: Promise<unknown>): Promise<NetError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof NetError) return e;
    throw e;
  }
  throw new Error('expected a NetError, got success');
}

/** The error createTapsMany gives one request: it refuses a request in that request's outcome. */
async function refusedRequest(job: CreateJob, opts: NetOptions): Promise<NetError> {
  const outcomes = await createTapsMany([job], opts);
  assert.is(outcomes.length, 1);
  const [outcome] = outcomes;
  if (outcome === undefined || !('error' in outcome)) throw new Error(`expected a refusal, got ${JSON.stringify(outcome)}`);
  return outcome.error;
}

const BAD_NAMES: unknown[] = ['', 'a'.repeat(16), '-x', '.x', '..', 'a b', 'a/b', 'br0;rm', 'br#0', 'bré', 'a\nb', 5, null, undefined, {}];
const OWNER = { uid: 1000, gid: 1000 };

test('every malformed bridge name is BAD_NAME from createTapsMany, and no program runs', async () => {
  for (const bad of BAD_NAMES) {
    const { deps, calls } = recorder();
    const err = await refusedRequest({ bridges: ['br0', bad as string], owner: OWNER }, { deps });
    assert.is(err.code, 'BAD_NAME', `for ${JSON.stringify(bad)}`);
    assert.equal(calls, [], `for ${JSON.stringify(bad)}`);
  }
});

test('a bad name is BAD_NAME from classifyBridges, deleteTaps, ovsCleanup and tapInfo, and no program runs', async () => {
  const { deps, calls } = recorder();
  for (const bad of BAD_NAMES) {
    assert.is((await refusal(classifyBridges([bad as string], { deps }))).code, 'BAD_NAME');
    const nic = { bridge: 'br0', tap: bad, type: 'brctl' } as Nic;
    assert.is((await refusal(deleteTaps([nic], { deps }))).code, 'BAD_NAME');
    assert.is((await refusal(deleteTaps([{ ...nic, tap: 'tap0', bridge: bad as string }], { deps }))).code, 'BAD_NAME');
    assert.is((await refusal(ovsCleanup([{ bridge: 'br0', tap: bad as string }], { uid: 1 }, { deps }))).code, 'BAD_NAME');
    assert.throws(() => tapInfo(bad as string), (e: unknown) => e instanceof NetError && e.code === 'BAD_NAME');
  }
  assert.equal(calls, []);
});

test('an owner that is not a valid uid or gid is BAD_REQUEST before anything runs', async () => {
  const { deps, calls } = recorder();
  for (const owner of [{ uid: -1, gid: 1 }, { uid: 1.5, gid: 1 }, { uid: 0xffff_ffff, gid: 1 }, { uid: 1, gid: Number.NaN }]) {
    assert.is((await refusedRequest({ bridges: ['br0'], owner }, { deps })).code, 'BAD_REQUEST');
  }
  assert.is((await refusal(ovsCleanup([{ bridge: 'br0', tap: 't' }], { uid: -1 }, { deps }))).code, 'BAD_REQUEST');
  assert.equal(calls, []);
});

test('a session tag or ovsdb address that could be read as ovs-vsctl syntax is refused', async () => {
  const { deps, calls } = recorder();
  for (const session of ['', 'a b', 'a=b', 'a,b', '"x"', 'x'.repeat(129)]) {
    assert.is((await refusedRequest({ bridges: ['br0'], owner: OWNER, session }, { deps })).code, 'BAD_REQUEST');
  }
  for (const ovsdb of ['', 'unix:/a b', 'unix:/x\n--db=evil']) {
    assert.is((await refusal(createTapsMany([{ bridges: ['br0'], owner: OWNER }], { deps, ovsdb }))).code, 'BAD_REQUEST');
  }
  assert.equal(calls, []);
});

test('more bridges than a request may hold is BAD_REQUEST', async () => {
  const { deps, calls } = recorder();
  const many = Array.from({ length: MAX_ITEMS_PER_REQUEST + 1 }, (_, i) => `br${i}`);
  assert.is((await refusedRequest({ bridges: many, owner: OWNER }, { deps })).code, 'BAD_REQUEST');
  assert.equal(calls, []);
});

test('a nic type other than brctl or ovs is refused by deleteTaps', async () => {
  const { deps, calls } = recorder();
  const nic = { bridge: 'br0', tap: 'tap0', type: 'bogus' } as unknown as Nic;
  assert.is((await refusal(deleteTaps([nic], { deps }))).code, 'BAD_REQUEST');
  assert.equal(calls, []);
});

test('no bridges means no taps and no program run', async () => {
  const { deps, calls } = recorder();
  assert.equal(await createTapsMany([{ bridges: [], owner: OWNER }], { deps }), [{ nics: [], ifindexes: [] }]);
  assert.equal(calls, []);
});

test('generated tap names are xkvm plus 8 lower-case base32 characters, and differ', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i += 1) {
    const name = randomTapName();
    assert.match(name, /^xkvm[a-z2-7]{8}$/);
    seen.add(name);
  }
  assert.is(seen.size, 1000);
});

test.run();
