// SessionStore.remove: a record already gone is fine; any other failure is thrown, and the two
// callers that remove records (the reaper, the service ending a session) report it in the audit.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Nic } from '../../../shared/src/protocol/messages.js';
import type { Caller } from '../../../helper/src/identity/caller.js';
import { PolicyHolder } from '../../../helper/src/policy/holder.js';
import { Ledger } from '../../../helper/src/records/ledger.js';
import { Reaper } from '../../../helper/src/records/reaper.js';
import { SessionStore, type SessionRecord } from '../../../helper/src/records/store.js';
import { Service } from '../../../helper/src/requests/service.js';
import { MemoryAudit, MemoryLocks, StandInHost } from '../requests/stand-ins.js';

/** A store whose remove() fails as unlink would on a read-only state directory. */
class StuckStore extends SessionStore {
  override remove(id: string): void {
    throw Object.assign(new Error(`EROFS: read-only file system, unlink '${join(this.dir, `${id}.json`)}'`), { code: 'EROFS' });
  }
}

const NOBODY = 65534;
/** No process has this pid (above any pid_max). */
const GONE = { pid: 99_999_999, start: '1' };
const NIC: Nic = { bridge: 'br0', tap: 'xkvmtest0001', type: 'brctl' };

let dir = '';
const fresh = (name: string): string => join(dir, name);

function record(id: string): SessionRecord {
  return { version: 1, id, uid: 4001, client: GONE, helper: GONE, nics: [NIC] };
}


test.before(() => {
  if (process.geteuid?.() !== 0) throw new Error('this suite needs root (it removes records as another user)');
  dir = mkdtempSync(join(tmpdir(), 'xkvm-store-'));
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('remove deletes the record, and a record already gone is not an error', () => {
  const store = new SessionStore(fresh('plain'));
  store.write(record('00000000000000a1'));
  store.remove('00000000000000a1');
  assert.not.ok(existsSync(join(store.dir, '00000000000000a1.json')));
  store.remove('00000000000000a1');
  store.remove('00000000000000a2');
});

test('remove throws when the record cannot be unlinked: EISDIR for a directory in its place', () => {
  const store = new SessionStore(fresh('eisdir'));
  mkdirSync(join(store.dir, '00000000000000b1.json'));
  assert.throws(() => store.remove('00000000000000b1'), (e: NodeJS.ErrnoException) => e.code === 'EISDIR');
});

test('remove throws EACCES when the state directory does not let this user remove it', () => {
  const store = new SessionStore(fresh('eacces'));
  store.write(record('00000000000000c1'));
  // Root may remove anything: as nobody (effective uid only, restored below), the 0700 root directory is closed.
  process.seteuid?.(NOBODY);
  try {
    assert.throws(() => store.remove('00000000000000c1'), (e: NodeJS.ErrnoException) => e.code === 'EACCES');
  } finally {
    process.seteuid?.(0);
  }
  assert.is(process.geteuid?.(), 0);
  assert.ok(existsSync(join(store.dir, '00000000000000c1.json')));
});

test('the reaper reports a record it cannot remove after removing its taps', async () => {
  const store = new StuckStore(fresh('reaper'));
  // A record left by a helper that is gone, for a client that is gone, and its tap in the ledger.
  writeFileSync(join(store.dir, '00000000000000d1.json'), JSON.stringify(record('00000000000000d1')));
  const host = new StandInHost();
  const ledger = new Ledger(store.dir, { lock: new MemoryLocks().lock });
  const ifindex = host.add(NIC.tap, 4001);
  ledger.write(4001, [{ ...NIC, ifindex, uid: 4001, lifetime: 'session', session: '00000000000000d1', helper: GONE, time: 't' }]);
  const audit = new MemoryAudit();
  const reaper = new Reaper({ store, ledger, audit, self: { pid: process.pid, start: '1' }, ovsdbOption: () => ({}), net: host });
  await reaper.sweep(false);
  assert.equal(host.events, [`delete ${NIC.tap}`]);
  const reaped = audit.records.filter((r) => r.event === 'session-reaped');
  assert.is(reaped.length, 1);
  assert.is(reaped[0]?.['result'], 'error');
  assert.match(String(reaped[0]?.['message']), /EROFS/);
});

test('the service reports a session record it cannot remove when the session ends, and does not throw', async () => {
  const conf = fresh('service.conf');
  writeFileSync(conf, 'allow br0 alice\n', { mode: 0o644 });
  const audit = new MemoryAudit();
  const store = new StuckStore(fresh('service'));
  const service = new Service({
    policy: new PolicyHolder(conf), net: new StandInHost(), audit, store, ledger: new Ledger(store.dir, { lock: new MemoryLocks().lock }),
    helper: { pid: process.pid, start: '1' }, log: () => undefined,
  });
  const alice: Caller = { uid: 4001, gid: 4001, pid: process.pid, start: 1n, transport: 'socket', user: { name: 'alice', uid: 4001, gid: 4001, groups: [] } };
  const session = { id: '00000000000000e1', nics: [] };
  const reply = await service.handle({ v: 1, id: 1, op: 'make-nics', nics: [{ bridge: 'br0' }] }, alice, session);
  assert.ok(reply.ok, JSON.stringify(reply));
  await service.endSession(session, alice, 'the client left');
  const ended = audit.records.find((r) => r.event === 'session-end');
  assert.is(ended?.['result'], 'ok');
  const stuck = audit.records.find((r) => r.event === 'session-record');
  assert.is(stuck?.['result'], 'error');
  assert.is(stuck?.['session'], '00000000000000e1');
  assert.match(String(stuck?.['message']), /cannot remove the session record: EROFS/);
});

test.run();
