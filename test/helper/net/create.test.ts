// createTapsMany takes a request's owner as given or refuses it: a missing or malformed uid is
// that request's BAD_REQUEST, never a tap for root, and no line of it reaches ip.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createTapsMany, randomTapName, vlanFilteringOf, type CreateJob, type IpBatch, type NetDeps, type Runner } from '../../../helper/src/net/index.js';

/** Stand-ins that note anything run: nothing may be. */
function noPrograms(): { deps: NetDeps; ran: string[] } {
  const ran: string[] = [];
  const run: Runner = async (req) => (ran.push(req.file), { exitCode: 0, stdout: '', stderr: '' });
  const batch: IpBatch = async (lines) => (ran.push(...lines), { ok: true, failedLines: [], stderr: '' });
  return { deps: { run, batch, tapName: randomTapName, vlanFiltering: vlanFilteringOf, openTap: () => { throw new Error('no tap may be opened'); } }, ran };
}

test('an owner without a uid (missing, undefined, null, a string) is BAD_REQUEST and nothing runs', async () => {
  const { deps, ran } = noPrograms();
  const owners = [{}, { uid: undefined }, { uid: null }, { uid: '0' }, { gid: 0 }, { uid: undefined, gid: 1000 }];
  const jobs = owners.map((owner) => ({ bridges: ['br0'], owner }) as unknown as CreateJob);
  const outcomes = await createTapsMany(jobs, { deps });
  assert.is(outcomes.length, owners.length);
  for (const [i, outcome] of outcomes.entries()) {
    assert.ok('error' in outcome, `owner ${JSON.stringify(owners[i])}`);
    if ('error' in outcome) {
      assert.is(outcome.error.code, 'BAD_REQUEST');
      assert.match(outcome.error.message, /bad uid/);
    }
  }
  assert.equal(ran, []);
});

test.run();
