// Deleting taps together (helper/src/net/groupdelete.ts), for real, in a network namespace (root):
// deletions asked for while one runs wait and go into the next group deletion (`link set dev T
// group G` each, then one `link del group G`), and a tap that vanished after it was checked fails
// only its own line. Nothing here is timed: the bench measures what this saves.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { DeleteResult, Nic } from '../../../helper/src/net/index.js';
import { createNetns, sweepStaleNetns, TOOLS, type Netns } from '../../support/netns.js';
import { deletions, devices, requireRoot, runJob, tapsLike, value } from './support.js';

const OWNER = { uid: 4301, gid: 4301 };
let ns: Netns;

test.before(() => {
  requireRoot();
  sweepStaleNetns();
  ns = createNetns({ bridges: ['br0'] });
});
test.after(() => ns.destroy());

function make(count: number): Nic[] {
  return value<Nic[]>(runJob(ns, { op: 'create', bridges: Array.from({ length: count }, () => 'br0'), owner: OWNER }));
}

test('deletions asked for while one runs are done together, as one group deletion, and a tap that vanished among them does not stop the others', () => {
  const [first, second, third] = [make(3), make(4), make(5)];
  const vanished = first[1]?.tap ?? '';
  const out = runJob(ns, {
    op: 'delete-together', together: [first, second, third],
    // its owner deletes one of the first session's taps after it was checked, just before the batch
    interpose: { before: 'ip-batch', commands: [[TOOLS.ip, 'link', 'del', vanished]] },
  });
  const results = value<DeleteResult[]>(out);
  const names = (nics: Nic[]): string[] => nics.map((n) => n.tap);
  assert.equal(deletions(out).map((d) => d.taps), [names(first), [...names(second), ...names(third)]],
    'the first deletion alone, then the two asked for meanwhile in one group');
  const groups = new Set(deletions(out).map((d) => d.group));
  assert.is(groups.size, 1, 'one group number for the process');
  const [group] = [...groups];
  assert.ok(group !== undefined && group >= 0x7800_0000 && group < 0x7840_0000, `the helper's own group range: ${String(group)}`);
  assert.equal(tapsLike(ns, 'xkvm'), [], 'every tap is gone');
  assert.equal(results.map((r) => r.deleted.length + r.gone.length), [3, 4, 5]);
  assert.ok(devices(ns).has('br0'));
});

test('a tap already gone when deletion is asked for is reported gone and never reaches ip', () => {
  const nics = make(2);
  ns.ip('link', 'del', nics[0]?.tap ?? '');
  const out = runJob(ns, { op: 'delete', nics });
  assert.equal(value<DeleteResult>(out), { deleted: [nics[1]?.tap ?? ''], gone: [nics[0]?.tap ?? ''] });
  assert.equal(deletions(out).map((d) => d.taps), [[nics[1]?.tap]]);
});

test('a device put in the deletion group that the kernel will not delete as a group does not keep the taps: they are deleted one by one', () => {
  const nics = make(2);
  // The loopback device cannot be deleted: a group holding it is refused as a whole (EOPNOTSUPP).
  // Put it in the group this worker will use, as a stray device of the same group would be.
  const out = runJob(ns, { op: 'delete-stray-lo', nics });
  const r = value<{ result: DeleteResult; group: number }>(out);
  assert.equal(r.result.deleted.sort(), nics.map((n) => n.tap).sort());
  assert.equal(tapsLike(ns, 'xkvm'), []);
  const [grouped, single] = deletions(out);
  assert.is(grouped?.group, r.group);
  assert.equal(single, { group: undefined, taps: nics.map((n) => n.tap) });
  assert.ok(devices(ns).has('lo'), 'lo is still there');
});

test.run();
