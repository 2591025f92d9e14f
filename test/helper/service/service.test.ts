// The service with a stand-in network layer (the NetOps boundary): how max-taps counts while
// taps are being removed. Real taps are covered by test/helper/net and the lifecycle suites.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Nic, Reply } from '../../../shared/src/protocol/messages.js';
import { AuditLog, type AuditRecord } from '../../../helper/src/audit/audit.js';
import type { Caller } from '../../../helper/src/service/caller.js';
import type { NetOps } from '../../../helper/src/service/net-ops.js';
import { PolicyHolder } from '../../../helper/src/service/policy-holder.js';
import { Service, type Session } from '../../../helper/src/service/service.js';
import { SessionStore } from '../../../helper/src/session/store.js';

class MemoryAudit extends AuditLog {
  readonly records: AuditRecord[] = [];

  override write(record: AuditRecord): void {
    this.records.push(record);
  }
}

/** Taps on a pretend host; deleting waits until `finishRemoval()` is called. */
function standInNet(): { net: NetOps; host: Map<string, number>; finishRemoval: () => void } {
  const host = new Map<string, number>();
  let n = 0;
  const waiting: Array<() => void> = [];
  const net: NetOps = {
    async createTaps(bridges, owner) {
      return bridges.map((bridge) => {
        n += 1;
        const tap = `xkvmtest${n}`;
        host.set(tap, owner.uid);
        return { bridge, tap, type: 'brctl' as const };
      });
    },
    async deleteTaps(nics: Nic[]) {
      await new Promise<void>((resolve) => waiting.push(resolve));
      for (const nic of nics) host.delete(nic.tap);
    },
    async ovsCleanup() {
      return { removed: [], refused: [] };
    },
    tapsOwnedBy: (uid, except = new Set()) => [...host].filter(([tap, owner]) => owner === uid && !except.has(tap)).length,
  };
  return { net, host, finishRemoval: () => { for (const w of waiting.splice(0)) w(); } };
}

const dir = mkdtempSync(join(tmpdir(), 'xkvm-service-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function setUp(policy: string): { service: Service; host: Map<string, number>; finishRemoval: () => void; audit: MemoryAudit } {
  const file = join(dir, `helper-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, policy, { mode: 0o644 });
  const { net, host, finishRemoval } = standInNet();
  const audit = new MemoryAudit();
  const service = new Service({
    policy: new PolicyHolder(file), net, audit, store: new SessionStore(join(dir, 'state')),
    helper: { pid: process.pid, start: '1' }, log: () => undefined, lock: async () => () => undefined,
  });
  return { service, host, finishRemoval, audit };
}

const alice: Caller = {
  uid: 4101, gid: 4101, pid: process.pid, start: 1n, transport: 'socket',
  user: { name: 'alice', uid: 4101, gid: 4101, groups: [] },
};

function makeNics(service: Service, session: Session): Promise<Reply> {
  return service.handle({ v: 1, id: 1, op: 'make-nics', bridges: ['br0'] }, alice, session);
}

test('a tap still held counts against max-taps', async () => {
  const { service } = setUp('allow br0 alice\nmax-taps 1\n');
  const first = await makeNics(service, { id: 'a'.repeat(16), nics: [] });
  assert.ok(first.ok, JSON.stringify(first));
  const second = await makeNics(service, { id: 'b'.repeat(16), nics: [] });
  assert.is(!second.ok && second.error.code, 'QUOTA');
});

test('taps the helper is removing no longer count, and a finished removal leaves the count right', async () => {
  const { service, host, finishRemoval } = setUp('allow br0 alice\nmax-taps 1\n');
  const old: Session = { id: 'c'.repeat(16), nics: [] };
  assert.ok((await makeNics(service, old)).ok);
  const ending = service.endSession(old, alice, 'the client left');
  // The old tap is still on the host, on its way out: a new VM may have its tap now.
  assert.is(host.size, 1);
  const next = await makeNics(service, { id: 'd'.repeat(16), nics: [] });
  assert.ok(next.ok, JSON.stringify(next));
  finishRemoval();
  await ending;
  assert.is(host.size, 1);
  const third = await makeNics(service, { id: 'e'.repeat(16), nics: [] });
  assert.is(!third.ok && third.error.code, 'QUOTA');
});

test.run();
