// Reading `ip -o monitor link`: only "Deleted" lines count, names are checked, and a line too long
// to be a link's is dropped whole without growing memory.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { LineSplitter, parseDeleted, watchLinkDeletions, type LinkDeleted } from '../../../helper/src/net/linkwatch.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';

const LINK = '<BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default \\    link/ether a2:0e:08:04:66:88 brd ff:ff:ff:ff:ff:ff';

test('a Deleted line gives the ifindex and name of the removed link', () => {
  assert.equal(parseDeleted(`Deleted 7: xkvm0a1b2c3d4e: ${LINK}`), { ifindex: 7, name: 'xkvm0a1b2c3d4e' });
  assert.equal(parseDeleted(`Deleted 12: veth0@if11: ${LINK}`), { ifindex: 12, name: 'veth0' });
});

test('new and changed links, and anything else, are not deletions', () => {
  assert.is(parseDeleted(`7: tap0: ${LINK}`), undefined);
  assert.is(parseDeleted(''), undefined);
  assert.is(parseDeleted('Deleted'), undefined);
  assert.is(parseDeleted(`Deleted x: tap0: ${LINK}`), undefined);
  assert.is(parseDeleted(`Deleted 0: tap0: ${LINK}`), undefined);
  assert.is(parseDeleted(`Deleted 99999999999: tap0: ${LINK}`), undefined);
  assert.is(parseDeleted(`Deleted 7: ${'a'.repeat(16)}: ${LINK}`), undefined, 'longer than an interface name');
  assert.is(parseDeleted(`Deleted 7: a/b: ${LINK}`), undefined);
  assert.is(parseDeleted(`Deleted 7: ..: ${LINK}`), undefined);
  assert.is(parseDeleted(` Deleted 7: tap0: ${LINK}`), undefined);
});

test('lines are split across chunks, and a partial line waits for its end', () => {
  const s = new LineSplitter(100);
  assert.equal(s.push('Deleted 7: ta'), []);
  assert.equal(s.push('p0: x\n8: b'), ['Deleted 7: tap0: x']);
  assert.equal(s.push('r0: y\n\n'), ['8: br0: y', '']);
});

test('a line longer than the limit is dropped whole and the next one is read', () => {
  const s = new LineSplitter(10);
  assert.equal(s.push('Deleted 7: '), []);
  assert.equal(s.push('x'.repeat(1000)), []);
  assert.equal(s.push('y'.repeat(1000)), []);
  assert.equal(s.push('tail\nDeleted 8\n'), ['Deleted 8']);
  assert.equal(s.push('0123456789\n01234567890\nok\n'), ['0123456789', 'ok']);
});

test('a link is reported once though ip prints "Deleted" for it twice (bridge port, then device)', async () => {
  const lines = ['Deleted 5: tapa: <A> mtu 1500 master br0 state DOWN', 'Deleted 5: tapa: <A> mtu 1500 qdisc noop state DOWN', 'Deleted 6: tapb: <A> mtu 1500', ''];
  const seen: LinkDeleted[] = [];
  const watch = watchLinkDeletions({
    command: [process.execPath, '-e', `process.stdout.write(${JSON.stringify(lines.join('\n'))}); setInterval(() => {}, 1000)`],
    isGone: () => true,
    onDeleted: (link) => seen.push(link),
  });
  try {
    await waitFor(() => seen.length >= 2, PATIENCE_MS, { what: 'both links' });
    assert.equal(seen, [{ ifindex: 5, name: 'tapa' }, { ifindex: 6, name: 'tapb' }]);
  } finally {
    watch.stop();
  }
});

test.run();
