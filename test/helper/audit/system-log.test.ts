/**
 * Issue 9, item 10: a helper run by pkexec writes its audit records to the caller's stderr, which
 * no admin reads; so it also sends each one to the system log: the journal through its native
 * protocol (fields XKVM_EVENT, XKVM_UID, XKVM_USER, XKVM_RESULT besides MESSAGE, so that
 * `journalctl XKVM_USER=alice` finds them), or syslog's /dev/log where there is no journal.
 * Here the two sockets are the test's own (a real Unix datagram socket bound at a path of this
 * test, read by a small Python listener), and the real addon sends. The real pkexec run is in
 * test/helper/lifecycle/pkexec-terminal.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { AuditLog, type AuditRecord } from '../../../helper/src/audit/audit.js';
import { MESSAGE_IDS, SystemLog } from '../../../helper/src/audit/system-log.js';
import { stderrIsJournal } from '../../../helper/src/audit/journal-stream.js';
import { fstatSync } from 'node:fs';
import { listenDatagrams, parseJournal, type DatagramListener } from '../../support/datagram-listener.js';

let dir = '';
const listeners: DatagramListener[] = [];

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'xkvm-syslog-'));
});

test.after(() => {
  for (const l of listeners) l.close();
  rmSync(dir, { recursive: true, force: true });
});

async function listen(name: string, options: { hold?: boolean } = {}): Promise<DatagramListener> {
  const l = await listenDatagrams(join(dir, name), options);
  listeners.push(l);
  return l;
}

/** What the helper writes on stderr while `fn` runs (not shown: it would drown the test's output). */
function quietly(fn: () => void): string {
  const original = process.stderr.write.bind(process.stderr);
  let written = '';
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    written += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = original;
  }
  return written;
}

const request = (user: string, result: string, extra: Record<string, unknown> = {}): AuditRecord => ({
  event: 'request', op: 'make-nics', caller: { uid: 4321, user, pid: 77, transport: 'pkexec' }, result, ...extra,
});

const one = (fields: Map<string, string[]>, key: string): string | undefined => {
  const values = fields.get(key);
  assert.ok(values === undefined || values.length === 1, `${key} appears once: ${JSON.stringify(values)}`);
  return values?.[0];
};

test('each record reaches the journal socket as one native entry: a readable MESSAGE, XKVM_RECORD the JSON line, with XKVM_EVENT, XKVM_UID, XKVM_USER, XKVM_RESULT, XKVM_OP, XKVM_BRIDGE and XKVM_TAP, a MESSAGE_ID for its kind, the identifier and a priority', async () => {
  const journal = await listen('j1.sock');
  const audit = new AuditLog(undefined, { systemLog: new SystemLog({ journal: journal.path, syslog: join(dir, 'none1') }) });
  let stderr = quietly(() => audit.write(request('alice', 'ok', { taps: [{ bridge: 'br0', tap: 'xkvmabcdefgh', type: 'brctl' }] })));
  const line = stderr.replace(/^xkvm-helper: audit /, '').trimEnd();
  const entry = parseJournal(await journal.next(() => true, 10_000, 'the entry'));
  assert.is(one(entry, 'XKVM_RECORD'), line, 'XKVM_RECORD is exactly the line stderr got');
  assert.is(JSON.parse(one(entry, 'XKVM_RECORD')!).taps[0].tap, 'xkvmabcdefgh');
  assert.match(one(entry, 'MESSAGE')!, /^\S+Z alice\(4321\) make-nics br0 - ok xkvmabcdefgh$/);
  assert.is(one(entry, 'MESSAGE_ID'), MESSAGE_IDS['request']);
  assert.is(one(entry, 'XKVM_OP'), 'make-nics');
  assert.is(one(entry, 'XKVM_BRIDGE'), 'br0');
  assert.is(one(entry, 'XKVM_TAP'), 'xkvmabcdefgh');
  assert.is(one(entry, 'XKVM_EVENT'), 'request');
  assert.is(one(entry, 'XKVM_UID'), '4321');
  assert.is(one(entry, 'XKVM_USER'), 'alice');
  assert.is(one(entry, 'XKVM_RESULT'), 'ok');
  assert.is(one(entry, 'SYSLOG_IDENTIFIER'), 'xkvm-helper');
  assert.is(one(entry, 'PRIORITY'), '6');

  stderr = quietly(() => audit.write(request('alice', 'error', { code: 'DENIED' })));
  const refused = parseJournal(await journal.next((d) => d.includes('DENIED'), 10_000, 'the refusal'));
  assert.is(one(refused, 'PRIORITY'), '4', 'a refusal is a warning');
  assert.is(one(refused, 'XKVM_RESULT'), 'error');
  assert.is(stderr.split('\n').filter((l) => l !== '').length, 1, `stderr still gets the record, and nothing else: ${stderr}`);
});

test('a value holding a newline goes in the binary form: it is read back whole and forges no field', async () => {
  const journal = await listen('j2.sock');
  const audit = new AuditLog(undefined, { systemLog: new SystemLog({ journal: journal.path, syslog: join(dir, 'none2') }) });
  const name = 'eve\nMESSAGE=forged\nXKVM_UID=0';
  quietly(() => audit.write({ event: 'session-end', uid: 4322, user: name, result: 'ok' }));
  const entry = parseJournal(await journal.next(() => true, 10_000, 'the entry'));
  assert.is(one(entry, 'XKVM_USER'), name);
  assert.is(one(entry, 'XKVM_UID'), '4322');
  assert.is(one(entry, 'XKVM_EVENT'), 'session-end');
  assert.ok(!one(entry, 'XKVM_RECORD')!.includes('\n'), 'the JSON line escapes the newline');
  assert.ok(!one(entry, 'MESSAGE')!.includes('\n'), 'the readable line escapes the newline');
});

test('without a journal, records go to syslog\'s socket as <PRI>Mmm dd hh:mm:ss xkvm-helper[PID]: JSON (facility authpriv)', async () => {
  const syslog = await listen('log1.sock');
  const audit = new AuditLog(undefined, { systemLog: new SystemLog({ journal: join(dir, 'no-journal.sock'), syslog: syslog.path }) });
  const stderr = quietly(() => {
    audit.write(request('bob', 'ok'));
    audit.write(request('bob', 'error', { code: 'QUOTA' }));
  });
  const lines = stderr.trimEnd().split('\n').map((l) => l.replace(/^xkvm-helper: audit /, ''));
  assert.is(lines.length, 2, stderr);
  await syslog.next(() => syslog.received.length >= 2, 10_000, 'two messages');
  const [ok, refused] = syslog.received.map((d) => d.toString('utf8'));
  const shape = new RegExp(`^<(\\d+)>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3]\\d \\d\\d:\\d\\d:\\d\\d xkvm-helper\\[${process.pid}\\]: (.*)$`);
  const a = shape.exec(ok ?? '');
  const b = shape.exec(refused ?? '');
  assert.ok(a !== null && b !== null, `${ok}\n${refused}`);
  assert.is(a[1], String(10 * 8 + 6), 'authpriv.info');
  assert.is(b[1], String(10 * 8 + 4), 'authpriv.warning');
  assert.is(a[3], lines[0]);
  assert.is(b[3], lines[1]);
});

test('a journal too busy to take records does not stall the helper: those it missed are counted and the count reaches it with the next record', async () => {
  const journal = await listen('j3.sock', { hold: true });
  const audit = new AuditLog(undefined, { systemLog: new SystemLog({ journal: journal.path, syslog: join(dir, 'none3') }) });
  // Far more than a Unix datagram queue holds (net.unix.max_dgram_qlen: 10 by the kernel, 512 by systemd).
  const sent = 2000;
  quietly(() => {
    for (let i = 0; i < sent; i += 1) audit.write(request('carol', 'ok', { n: i }));
  });
  journal.release();
  await journal.drained(10_000);
  quietly(() => audit.write(request('carol', 'ok', { n: 'last' })));
  const last = await journal.next((d) => d.includes('"n":"last"'), 10_000, 'the record after the queue drained');
  const entries = journal.received.map(parseJournal);
  const note = entries.find((e) => one(e, 'XKVM_EVENT') === 'audit-missed');
  assert.ok(note !== undefined, 'the count of missed records was sent');
  const missed = Number(one(note, 'XKVM_MISSED'));
  const delivered = entries.filter((e) => one(e, 'XKVM_EVENT') === 'request' && !one(e, 'XKVM_RECORD')!.includes('"n":"last"')).length;
  assert.ok(missed > 0, 'some records were missed');
  assert.is(missed + delivered, sent, `${missed} missed + ${delivered} delivered`);
  assert.is(JSON.parse(one(note, 'XKVM_RECORD')!).count, missed);
  assert.ok(journal.received.indexOf(last) > journal.received.findIndex((d) => d.includes('XKVM_EVENT=audit-missed')), 'the count comes before the record');
});

test('with no system log at all, writing never throws and stderr says so once', () => {
  const audit = new AuditLog(undefined, { systemLog: new SystemLog({ journal: join(dir, 'nothing.sock'), syslog: join(dir, 'nothing-either.sock') }) });
  const stderr = quietly(() => {
    for (let i = 0; i < 3; i += 1) audit.write(request('dave', 'ok'));
  });
  const complaints = stderr.split('\n').filter((l) => l.includes('neither the journal'));
  assert.is(complaints.length, 1, stderr);
  assert.is(stderr.split('\n').filter((l) => l.startsWith('xkvm-helper: audit ')).length, 3);
});

test('a record naming several bridges and taps has an XKVM_BRIDGE and an XKVM_TAP for each, and a session end its own MESSAGE_ID and XKVM_SESSION', async () => {
  const journal = await listen('j5.sock');
  const audit = new AuditLog(undefined, { systemLog: new SystemLog({ journal: journal.path, syslog: join(dir, 'none5') }) });
  quietly(() => audit.write({ event: 'session-end', uid: 4323, user: 'bob', session: 's1', result: 'ok', removed: [{ bridge: 'br0', tap: 'xkvmaaaaaaaa' }, { bridge: 'ovsbr0', tap: 'xkvmbbbbbbbb' }] }));
  const entry = parseJournal(await journal.next(() => true, 10_000, 'the entry'));
  assert.equal(entry.get('XKVM_BRIDGE'), ['br0', 'ovsbr0']);
  assert.equal(entry.get('XKVM_TAP'), ['xkvmaaaaaaaa', 'xkvmbbbbbbbb']);
  assert.is(one(entry, 'XKVM_SESSION'), 's1');
  assert.is(one(entry, 'MESSAGE_ID'), MESSAGE_IDS['session-end']);
  assert.is.not(MESSAGE_IDS['session-end'], MESSAGE_IDS['request']);
  assert.ok(Object.values(MESSAGE_IDS).every((id) => /^[0-9a-f]{32}$/.test(id)), 'MESSAGE_IDs are 128-bit ids, as the journal wants');
  assert.is(new Set(Object.values(MESSAGE_IDS)).size, Object.keys(MESSAGE_IDS).length, 'one id a kind');
});

test('when stderr is the journal, a record the journal took natively is not written to stderr again; one it could not take still is', async () => {
  const journal = await listen('j6.sock');
  const audit = new AuditLog(undefined, { systemLog: new SystemLog({ journal: journal.path, syslog: join(dir, 'none6') }), stderrIsJournal: true });
  const taken = quietly(() => audit.write(request('carol', 'ok')));
  await journal.next((d) => d.includes('carol'), 10_000, 'the entry');
  assert.is(taken, '', 'nothing on stderr: the journal has it, with its fields');
  const lost = new AuditLog(undefined, { systemLog: new SystemLog({ journal: join(dir, 'gone.sock'), syslog: join(dir, 'gone-too') }), stderrIsJournal: true });
  const fallback = quietly(() => lost.write(request('carol', 'ok')));
  assert.match(fallback, /^xkvm-helper: audit \{.*"user":"carol"/m, 'without a journal to take it, the record goes to stderr');
});

test('stderr counts as the journal only when JOURNAL_STREAM names the device and inode of fd 2 itself', () => {
  const own = fstatSync(2, { bigint: true });
  assert.ok(stderrIsJournal({ JOURNAL_STREAM: `${own.dev}:${own.ino}` }));
  assert.not.ok(stderrIsJournal({ JOURNAL_STREAM: `${own.dev}:${own.ino + 1n}` }), 'another inode: a variable inherited without the stream');
  assert.not.ok(stderrIsJournal({}));
  for (const bad of ['', 'x:1', '1:', `${own.dev}:${own.ino}\n`, ' 1:2']) assert.not.ok(stderrIsJournal({ JOURNAL_STREAM: bad }), bad);
});

test.run();
