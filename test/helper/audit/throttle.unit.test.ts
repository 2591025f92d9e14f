// The audit throttle (helper/src/audit/throttle.ts) with a clock and timers of the test's own:
// a uid's refusals beyond its rate are counted by kind and summarised when its window closes
// (or at exit), so every decision stays on record; what names taps, what succeeded, what has no
// uid and what root did is never held back; one uid's flood does not hold back another's records.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { AuditLog, type AuditRecord } from '../../../helper/src/audit/audit.js';
import { AuditThrottle } from '../../../helper/src/audit/throttle.js';

interface Rig {
  readonly throttle: AuditThrottle;
  /** What was written (records let through, then summaries). */
  readonly written: AuditRecord[];
  /** Move the clock on, running the timers that fall due. */
  advance(ms: number): void;
  /** Offer `record`; true when it went through. */
  offer(record: AuditRecord): boolean;
}

function rig(options: { rate?: number; windowMs?: number } = {}): Rig {
  let now = 1_000_000;
  const timers: Array<{ at: number; fn: () => void }> = [];
  const written: AuditRecord[] = [];
  const throttle = new AuditThrottle({
    write: (record) => written.push(record),
    ...(options.rate === undefined ? {} : { ratePerSecond: options.rate }),
    ...(options.windowMs === undefined ? {} : { windowMs: options.windowMs }),
    now: () => now,
    schedule: (fn, ms) => timers.push({ at: now + ms, fn }),
  });
  return {
    throttle,
    written,
    advance(ms) {
      now += ms;
      for (const t of timers.filter((x) => x.at <= now)) {
        timers.splice(timers.indexOf(t), 1);
        t.fn();
      }
    },
    offer(record) {
      if (throttle.suppress(record)) return false;
      written.push(record);
      return true;
    },
  };
}

const denied = (uid: number, id: number): AuditRecord => ({
  event: 'request', op: 'make-nics', caller: { uid, user: `u${uid}`, pid: 7 }, request: { id }, result: 'error', code: 'DENIED', message: 'no',
});

const SUMMARY_EVENT = 'audit-summary';
const summaries = (written: readonly AuditRecord[]): AuditRecord[] => written.filter((r) => r.event === SUMMARY_EVENT);

test('a uid gets 20 records at once, then 20 a second; the rest are counted and summarised by kind when its window closes', () => {
  const r = rig();
  let through = 0;
  for (let i = 0; i < 100; i += 1) if (r.offer(denied(1500, i))) through += 1;
  assert.is(through, 20, 'the burst');
  // half a second later, ten more tokens
  r.advance(500);
  through = 0;
  for (let i = 0; i < 100; i += 1) if (r.offer(denied(1500, 1000 + i))) through += 1;
  assert.is(through, 10);
  assert.equal(summaries(r.written), [], 'no summary before the window closes');
  r.advance(9500);
  const s = summaries(r.written);
  assert.is(s.length, 1, JSON.stringify(s));
  assert.equal({ ...s[0], message: undefined }, {
    event: SUMMARY_EVENT, uid: 1500, user: 'u1500', kind: 'request make-nics error DENIED', count: 170, seconds: 10, message: undefined,
  });
  assert.is(s[0]!['message'], '170 more refusals (request make-nics error DENIED) from uid 1500 in the last 10 s');
});

test('kinds are summarised apart, and every record is either written or counted in a summary', () => {
  const r = rig();
  const offered = { request: 0, connection: 0 };
  for (let i = 0; i < 300; i += 1) {
    const record = i % 3 === 0
      ? { event: 'connection', result: 'closed', reason: 'refusals', code: 'DENIED', uid: 1501, pid: 8, message: '8 refused' }
      : denied(1501, i);
    offered[record.event as 'request' | 'connection'] += 1;
    r.offer(record);
    if (i % 50 === 0) r.advance(100);
  }
  r.throttle.flush();
  for (const event of ['request', 'connection'] as const) {
    const written = r.written.filter((w) => w.event === event).length;
    const counted = summaries(r.written).filter((s) => String(s['kind']).startsWith(`${event} `)).reduce((n, s) => n + Number(s['count']), 0);
    assert.is(written + counted, offered[event], `${event}: ${written} written + ${counted} counted`);
    assert.ok(counted > 0, `${event}: some were held back`);
  }
  assert.equal(summaries(r.written).map((s) => s['kind']).sort(), ['connection closed DENIED refusals', 'request make-nics error DENIED']);
});

test('records that name taps or say ok, records without a uid, root\'s records and summaries are never held back', () => {
  const r = rig();
  for (let i = 0; i < 50; i += 1) r.offer(denied(1502, i));
  const never: AuditRecord[] = [
    { event: 'request', op: 'make-nics', caller: { uid: 1502, user: 'u', pid: 1 }, result: 'ok', taps: [{ tap: 'xkvmabc' }] },
    { event: 'session-end', uid: 1502, result: 'error', message: 'cannot delete', taps: [{ tap: 'xkvmabc' }] },
    { event: 'request', op: 'ovs-cleanup', caller: { uid: 1502, user: 'u', pid: 1 }, result: 'ok', removed: [{ bridge: 'o', tap: 't' }], refused: [] },
    { event: 'helper-start', mode: 'socket' },
    { event: 'session-reaped', session: 'x', result: 'ok' },
    denied(0, 1),
    { event: SUMMARY_EVENT, uid: 1502, kind: 'k', count: 3 },
  ];
  for (const record of never) for (let i = 0; i < 30; i += 1) assert.ok(r.offer(record), JSON.stringify(record));
});

test('one uid\'s flood does not hold back another uid\'s records', () => {
  const r = rig();
  for (let i = 0; i < 1000; i += 1) r.offer(denied(1503, i));
  let through = 0;
  for (let i = 0; i < 20; i += 1) if (r.offer(denied(1504, i))) through += 1;
  assert.is(through, 20);
});

test('flush writes the pending summaries at once (the helper is exiting), and nothing twice', () => {
  const r = rig();
  for (let i = 0; i < 25; i += 1) r.offer(denied(1505, i));
  r.advance(1200);
  r.throttle.flush();
  const s = summaries(r.written);
  assert.is(s.length, 1);
  assert.is(s[0]!['count'], 5);
  assert.is(s[0]!['seconds'], 1.2);
  r.advance(20_000);
  r.throttle.flush();
  assert.is(summaries(r.written).length, 1, 'the window timer found nothing left to write');
});

test('a window past its end closes with the next record even before its timer runs (a busy event loop)', () => {
  let now = 0;
  const written: AuditRecord[] = [];
  // timers that never run
  const throttle = new AuditThrottle({ write: (record) => written.push(record), ratePerSecond: 1, windowMs: 1000, now: () => now, schedule: () => undefined });
  assert.not.ok(throttle.suppress(denied(1506, 1)));
  assert.ok(throttle.suppress(denied(1506, 2)));
  now += 1500;
  assert.not.ok(throttle.suppress(denied(1506, 3)), 'a token again');
  assert.equal(summaries(written).map((s) => [s['count'], s['seconds']]), [[1, 1.5]]);
});

test('AuditLog.write leaves out what its throttle holds back and writes the summaries it is given', () => {
  const lines: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    const audit = new AuditLog();
    let now = 0;
    let due: (() => void) | undefined;
    audit.throttle = new AuditThrottle({ write: (record) => audit.write(record), now: () => now, schedule: (fn) => { due = fn; } });
    for (let i = 0; i < 30; i += 1) audit.write(denied(1507, i));
    now += 10_000;
    due?.();
  } finally {
    process.stderr.write = original;
  }
  const records = lines.filter((l) => l.startsWith('xkvm-helper: audit ')).map((l) => JSON.parse(l.slice('xkvm-helper: audit '.length)) as AuditRecord);
  assert.is(records.filter((r) => r.event === 'request').length, 20);
  assert.equal(records.filter((r) => r.event === SUMMARY_EVENT).map((r) => r['count']), [10]);
});

test.run();
