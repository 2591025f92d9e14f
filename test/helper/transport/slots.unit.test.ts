// Connection slots (helper/src/transport/slots.ts): a connection's place among its uid's open
// connections is the number accepted before it and still open, whatever the order in which their
// limits become known; uids do not count against each other; the bound on all of them holds.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ConnectionSlots, MAX_CONNECTIONS } from '../../../helper/src/transport/slots.js';

test('each connection counts those of its uid accepted before it and still open', () => {
  const slots = new ConnectionSlots();
  const a = [slots.take(1000)!, slots.take(1000)!, slots.take(1000)!];
  const b = slots.take(1001)!;
  assert.equal(a.map((s) => s.ahead()), [0, 1, 2]);
  assert.is(b.ahead(), 0, 'another uid is not counted');
  a[0]!.release();
  assert.equal(a.map((s) => s.ahead()), [0, 0, 1]);
  a[0]!.release();
  assert.is(slots.open, 3, 'a second release changes nothing');
});

test('of many connections of one uid waiting for their limit, exactly the first LIMIT are within it, in whatever order they are checked', () => {
  const slots = new ConnectionSlots();
  const limit = 4;
  const waiting = Array.from({ length: 10 }, () => slots.take(1002)!);
  const admitted: number[] = [];
  // checked from the last to the first: the ones beyond the limit are refused (released) first
  for (const [i, slot] of [...waiting.entries()].reverse()) {
    if (slot.ahead() >= limit) slot.release();
    else admitted.push(i);
  }
  assert.equal(admitted.sort(), [0, 1, 2, 3]);
  assert.is(slots.open, limit);
});

test(`the bound on all connections (${MAX_CONNECTIONS} by default) refuses a place beyond it, and a released place can be taken again`, () => {
  const slots = new ConnectionSlots(3);
  const taken = [slots.take(1), slots.take(2), slots.take(undefined)];
  assert.ok(taken.every((s) => s !== undefined));
  assert.is(slots.take(4), undefined);
  taken[2]!.release();
  assert.ok(slots.take(4) !== undefined);
  assert.is(MAX_CONNECTIONS, 1024);
});

test.run();
