// The service with a stand-in network layer (the NetOps boundary): how max-taps counts while
// taps are being removed, and how requests that arrive together are batched. Real taps are covered by test/helper/net and the lifecycle suites.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Nic, Reply } from '../../../shared/src/protocol/messages.js';
import type { Caller } from '../../../helper/src/identity/caller.js';
import { NetError } from '../../../helper/src/net/errors.js';
import type { NetOps, TapOutcome } from '../../../helper/src/requests/net-ops.js';
import { PolicyHolder } from '../../../helper/src/policy/holder.js';
import { acceptAnyFile } from '../policy/support.js';
import { MAX_BATCH, Service, type Session } from '../../../helper/src/requests/service.js';
import { SessionStore } from '../../../helper/src/records/store.js';
import { caller, MemoryAudit } from './stand-ins.js';

interface StandIn {
  net: NetOps;
  host: Map<string, number>;
  /** Sizes of the batches createTaps was given, in order. */
  batches: number[];
  finishRemoval: () => void;
  /** Makes the next createTaps wait until the returned function is called. */
  holdNextBatch: () => () => void;
  /** Bridges whose taps fail to be made. */
  broken: Set<string>;
}

/** Taps on a pretend host; deleting waits until `finishRemoval()` is called. */
function standInNet(): StandIn {
  const host = new Map<string, number>();
  const batches: number[] = [];
  const broken = new Set<string>();
  let n = 0;
  const waiting: Array<() => void> = [];
  let hold: Promise<void> | undefined;
  const net: NetOps = {
    async createTaps(requests) {
      batches.push(requests.length);
      if (hold !== undefined) {
        const h = hold;
        hold = undefined;
        await h;
      }
      return requests.map(({ bridges, owner }): TapOutcome => {
        if (bridges.some((b) => broken.has(b))) return { error: new NetError('SYSTEM_ERROR', 'the stand-in could not') };
        return {
          nics: bridges.map((bridge) => {
            n += 1;
            const tap = `xkvmtest${n}`;
            host.set(tap, owner.uid);
            return { bridge, tap, type: 'brctl' as const };
          }),
        };
      });
    },
    async deleteTaps(nics: Nic[]) {
      await new Promise<void>((resolve) => waiting.push(resolve));
      for (const nic of nics) host.delete(nic.tap);
    },
    async ovsCleanup() {
      return { removed: [], refused: [] };
    },
    tapCounts: (except = new Set()) => {
      const counts = new Map<number, number>();
      for (const [tap, owner] of host) if (!except.has(tap)) counts.set(owner, (counts.get(owner) ?? 0) + 1);
      return counts;
    },
  };
  return {
    net, host, batches, broken,
    finishRemoval: () => { for (const w of waiting.splice(0)) w(); },
    holdNextBatch: () => {
      let release = (): void => undefined;
      hold = new Promise<void>((resolve) => { release = resolve; });
      return release;
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'xkvm-service-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function setUp(policy: string): StandIn & { service: Service; audit: MemoryAudit } {
  const file = join(dir, `helper-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, policy, { mode: 0o644 });
  const standIn = standInNet();
  const audit = new MemoryAudit();
  const service = new Service({
    policy: new PolicyHolder(file, { checkFile: acceptAnyFile }), net: standIn.net, audit, store: new SessionStore(join(dir, 'state')),
    helper: { pid: process.pid, start: '1' }, log: () => undefined, lock: async () => () => undefined,
  });
  return { ...standIn, service, audit };
}

const alice = caller('alice', 4101);
const bob = caller('bob', 4102);
let sessions = 0;

function makeNics(service: Service, session: Session = newSession(), who: Caller = alice, bridges = ['br0']): Promise<Reply> {
  return service.handle({ v: 1, id: 1, op: 'make-nics', bridges }, who, session);
}

function newSession(): Session {
  sessions += 1;
  return { id: sessions.toString(16).padStart(16, '0'), nics: [] };
}

test('a tap still held counts against max-taps', async () => {
  const { service } = setUp('allow br0 alice\nmax-taps 1\n');
  const first = await makeNics(service);
  assert.ok(first.ok, JSON.stringify(first));
  const second = await makeNics(service);
  assert.is(!second.ok && second.error.code, 'QUOTA');
});

test('taps the helper is removing no longer count, and a finished removal leaves the count right', async () => {
  const { service, host, finishRemoval } = setUp('allow br0 alice\nmax-taps 1\n');
  const old = newSession();
  assert.ok((await makeNics(service, old)).ok);
  const ending = service.endSession(old, alice, 'the client left');
  // The old tap is still on the host, on its way out: a new VM may have its tap now.
  assert.is(host.size, 1);
  const next = await makeNics(service);
  assert.ok(next.ok, JSON.stringify(next));
  finishRemoval();
  await ending;
  assert.is(host.size, 1);
  const third = await makeNics(service);
  assert.is(!third.ok && third.error.code, 'QUOTA');
});

test('requests that arrive while a batch is being made go together into the next one', async () => {
  const { service, batches, holdNextBatch } = setUp('allow br0 alice bob\nmax-taps 16\n');
  const release = holdNextBatch();
  const first = makeNics(service, newSession(), bob);
  await new Promise((r) => setImmediate(r));
  const rest = Array.from({ length: 5 }, () => makeNics(service));
  release();
  const replies = await Promise.all([first, ...rest]);
  assert.ok(replies.every((r) => r.ok), JSON.stringify(replies));
  assert.equal(batches, [1, 5]);
});

test('more requests than one batch takes are made in several, in the order they came', async () => {
  const { service, batches, holdNextBatch } = setUp('allow br0 alice bob\nmax-taps 64\n');
  const release = holdNextBatch();
  const first = makeNics(service, newSession(), bob);
  await new Promise((r) => setImmediate(r));
  const rest = Array.from({ length: MAX_BATCH + 8 }, () => makeNics(service));
  release();
  const replies = await Promise.all([first, ...rest]);
  assert.ok(replies.every((r) => r.ok), JSON.stringify(replies.find((r) => !r.ok)));
  assert.equal(batches, [1, MAX_BATCH, 8]);
});

test('in one batch a user\'s requests count against max-taps in the order they came, and only the one over is refused', async () => {
  const { service, holdNextBatch, audit } = setUp('allow br0 alice bob\nmax-taps 2\n');
  const release = holdNextBatch();
  const first = makeNics(service, newSession(), bob);
  await new Promise((r) => setImmediate(r));
  const mine = [makeNics(service), makeNics(service), makeNics(service), makeNics(service, newSession(), bob)];
  release();
  const replies = await Promise.all([first, ...mine]);
  assert.equal(replies.map((r) => r.ok || r.error.code), [true, true, true, 'QUOTA', true]);
  assert.is(audit.records.filter((r) => r['result'] === 'error' && r['code'] === 'QUOTA').length, 1);
});

test('a request that fails in a batch fails alone; the others get their taps', async () => {
  const { service, holdNextBatch, broken } = setUp('allow br0 alice bob\nallow br1 alice bob\nmax-taps 16\n');
  broken.add('br1');
  const release = holdNextBatch();
  const first = makeNics(service, newSession(), bob);
  await new Promise((r) => setImmediate(r));
  const rest = [makeNics(service), makeNics(service, newSession(), alice, ['br0', 'br1']), makeNics(service, newSession(), bob)];
  release();
  const replies = await Promise.all([first, ...rest]);
  assert.equal(replies.map((r) => r.ok || r.error.code), [true, true, 'SYSTEM_ERROR', true]);
});

test.run();
