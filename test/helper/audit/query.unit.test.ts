import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { matches, parseDuration } from '../../../helper/src/audit/query.js';
import { formatRecord } from '../../../helper/src/audit/readable.js';

test('durations read like systemd\'s: seconds by default, s/min/m/h/d/w, and sums', () => {
  assert.is(parseDuration('90'), 90_000);
  assert.is(parseDuration('90s'), 90_000);
  assert.is(parseDuration('15m'), 900_000);
  assert.is(parseDuration('15min'), 900_000);
  assert.is(parseDuration('1h30m'), 5_400_000);
  assert.is(parseDuration('2d'), 172_800_000);
  assert.is(parseDuration('1w'), 604_800_000);
});

test('anything else is refused saying what is expected, and more than a year too', () => {
  for (const bad of ['', 'yesterday', '1.5h', '-1h', '1h 30m', '1x', '1h30', 'h', '1e3']) {
    assert.throws(() => parseDuration(bad), /is not a duration: expected e\.g\. 90s/, bad);
  }
  assert.throws(() => parseDuration('400d'), /more than a year/);
});

test('a record\'s bridges are those asked for, made, left or cleaned up', () => {
  assert.ok(matches({ request: { bridges: ['br0', 'br1'] }, taps: [{ bridge: 'br2', tap: 't' }] }, { bridge: 'br2' }));
  assert.ok(matches({ request: { ports: [{ bridge: 'ovsbr0', port: 'p' }] } }, { bridge: 'ovsbr0' }));
  assert.ok(matches({ left: [{ bridge: 'br3', tap: 't' }] }, { bridge: 'br3' }));
  assert.not.ok(matches({ taps: 'not a list', request: null }, { bridge: 'br0' }));
  assert.is(formatRecord({ request: { bridges: ['br0', 'br1'] }, taps: [{ bridge: 'br0', tap: 't' }] }).split(' ')[3], 'br0,br1', 'each once');
});

test('filters: uid from the caller or the record, bridge, and since (a record without a readable time is left out)', () => {
  const r = { time: '2026-01-01T00:00:00.000Z', caller: { uid: 7 }, request: { bridges: ['br0'] } };
  assert.ok(matches(r, { uid: 7, bridge: 'br0', since: Date.parse('2025-12-31T00:00:00Z') }));
  assert.not.ok(matches(r, { uid: 8 }));
  assert.not.ok(matches(r, { bridge: 'br1' }));
  assert.not.ok(matches(r, { since: Date.parse('2026-01-02T00:00:00Z') }));
  assert.ok(matches({ uid: 7, event: 'session-end' }, { uid: 7 }));
  assert.not.ok(matches({ time: 'soon', uid: 7 }, { since: 0 }));
  assert.not.ok(matches({ caller: { uid: '7' } }, { uid: 7 }), 'a uid that is not a number is no uid');
});

test('the readable line escapes every control character a record carries: no record can move the cursor or start a line', () => {
  const line = formatRecord({
    time: '2026-01-01T00:00:00Z', caller: { uid: 1000, user: 'eve\u001b[2J' }, op: 'make-nics', request: { bridges: ['br0\n2026 root(0) make-nics'] },
    decision: 'deny', result: 'error', code: 'DENIED', message: 'no\r\u0085\u2028\\',
  });
  assert.not.match(line, /[\u0000-\u001f\u007f-\u009f\u2028]/);
  assert.is(line, '2026-01-01T00:00:00Z eve\\u001b[2J(1000) make-nics br0\\u000a2026 root(0) make-nics deny error DENIED "no\\u000d\\u0085\\u2028\\\\"');
});

test('a record with nothing usable still makes one line of dashes', () => {
  assert.is(formatRecord({}), '- - ? - - -');
});

test.run();
