/**
 * ovs-cleanup needs standing (issue 9, attack 8; design.md: "ovs-cleanup from a caller whom no
 * allow line names is refused (DENIED) before anything runs"). Replayed for real: the helper runs
 * under `strace -f -e trace=execve`; `nobody` and an ordinary user whom no allow line names ask
 * for clean-ups, many at once; they are refused DENIED, audited as denied, and the trace shows
 * that no program ran for them (no root ovs-vsctl per request). A user the policy names is the
 * control: each of their clean-ups runs ovs-vsctl, and two of them bracket the stretch checked.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { startHelper, STRACE, type HelperProcess } from '../../support/helper-process.js';
import { createNetns, lookupUser, type Netns, type TestUser } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import { Agent, assertError, fail, requireRoot } from '../server/support.js';
import { removeUsers, setUp } from '../lifecycle/support.js';

let users: TestUser[] = [];
let ns: Netns | undefined;
let ovs: Ovs | undefined;
let helper: HelperProcess | undefined;
const agents: Agent[] = [];

test.before(() => {
  requireRoot();
  if (!existsSync(STRACE)) throw new Error(`${STRACE} is missing: apt-get install strace (listed in .ci/setup)`);
  users = setUp(2);
  ns = createNetns({ bridges: ['br0'] });
  ovs = startOvs(ns, { bridges: ['ovsbr0'] });
});

test.after(async () => {
  for (const a of agents) await a.stop();
  await helper?.stop();
  ovs?.stop();
  ns?.destroy();
  removeUsers(users);
});

function cleanup(id: number, tap: string): object {
  return { v: 1, id, op: 'ovs-cleanup', ports: [{ bridge: 'ovsbr0', tap }] };
}

test('nobody and a user no allow line names are refused ovs-cleanup with DENIED, audited, and no program runs for them', async () => {
  const [alice, bob] = users as [TestUser, TestUser];
  const theNobody = lookupUser('nobody') ?? fail('there is no user nobody');
  const n = ns ?? fail('no namespace');
  const trace = join('/tmp', `xkvm-standing-${process.pid}.strace`);
  helper = await startHelper(n, { policy: `ovsdb ${(ovs ?? fail('no ovs')).db}\nallow ovsbr0 ${alice.name}\nallow br0 ${alice.name}\n`, straceOutput: trace });
  const h = helper;
  const named = Agent.start(n, alice);
  const strangers = [Agent.start(n, theNobody), Agent.start(n, bob)];
  agents.push(named, ...strangers);
  await named.open('m', h.socket);
  for (const s of strangers) {
    for (let c = 0; c < 8; c += 1) await s.open(`c${c}`, h.socket);
  }

  // Marker: a clean-up by the named user runs ovs-vsctl (the port does not exist).
  assertError(await named.ask('m', cleanup(1, 'xkvmmark0')), 'NO_SUCH_PORT', 1, 'the first marker');
  const mark = h.auditMark();
  // Eight connections each, all at once.
  const asked = strangers.flatMap((s, i) => Array.from({ length: 8 }, (_, c) => s.ask(`c${c}`, cleanup(100 + 10 * i + c, `xkvmx${i}${c}`)).then((next) => ({ next, id: 100 + 10 * i + c }))));
  for (const { next, id } of await Promise.all(asked)) {
    const reply = assertError(next, 'DENIED', id, `a clean-up by a caller without standing (${id})`);
    assert.match(reply.error.message, /no allow line/);
  }
  assertError(await named.ask('m', cleanup(2, 'xkvmmark1')), 'NO_SUCH_PORT', 2, 'the second marker');
  const records = h.auditSince(mark).filter((r) => r['op'] === 'ovs-cleanup' && r['result'] === 'error' && r['code'] === 'DENIED');
  assert.is(records.length, 16, JSON.stringify(h.auditSince(mark)));
  assert.ok(records.every((r) => r['decision'] === 'deny'));
  assert.equal([...new Set(records.map((r) => (r['caller'] as { uid: number }).uid))].sort((a, b) => a - b), [bob.uid, theNobody.uid].sort((a, b) => a - b));

  await h.stop(); // strace writes its last lines when the helper ends
  const lines = readFileSync(trace, 'utf8').split('\n').filter((l) => l.includes('execve('));
  rmSync(trace, { force: true });
  const at = (port: string): number => {
    const i = lines.findIndex((l) => l.includes(`"${port}"`));
    assert.ok(i >= 0, `the marker ${port} is not in the trace:\n${lines.join('\n')}`);
    return i;
  };
  const first = at('xkvmmark0');
  const second = at('xkvmmark1');
  assert.ok(lines[first]!.includes('/usr/bin/ovs-vsctl'), 'the marker ran ovs-vsctl');
  assert.equal(lines.slice(first + 1, second), [], 'programs ran for callers without standing');
});

test.run();
