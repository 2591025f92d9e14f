/**
 * Invariant 4, the client's side: a session's taps and OVS ports are gone within 2 s of the end of
 * its client process, however it ends, SIGKILL included, and its session record with them.
 */
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Netns, TestUser } from '../../support/netns.js';
import type { Ovs } from '../../support/ovs.js';
import {
  startHolder, startXkvm, stop, type Scratch, type Watched,
} from '../../support/helper-proc.js';
import { findDescendant, isRunning, procUid, signal } from '../../support/procs.js';
import { helperTaps, present } from '../../support/taps.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';
import { bridgedHelper, type BridgedHelper } from './support.js';

let ns: Netns;
let ovs: Ovs;
let scratch: Scratch;
let helper: Watched;
let alice: TestUser;
let bob: TestUser;

let fixture: BridgedHelper | undefined;

test.before(async () => {
  fixture = await bridgedHelper('kc');
  ({ ns, ovs, scratch, helper } = fixture);
  [alice, bob] = fixture.users;
});

test.after(async () => {
  await fixture?.tearDown();
});

test('a SIGKILLed client holding taps on a Linux bridge and an OVS bridge loses both taps, the OVS port and its session record within 2 s', async () => {
  const holder = startHolder(ns, alice.name, { socket: scratch.socket, bridges: ['br0', 'ovsbr0'] });
  const pid = await holder.ready(15_000);
  const { results } = await holder.result(15_000);
  const first = results[0];
  assert.ok(first?.ok, JSON.stringify(results));
  const nics = first.ok ? first.nics : [];
  assert.equal(nics.map((n) => [n.bridge, n.type]), [['br0', 'brctl'], ['ovsbr0', 'ovs']]);
  const taps = nics.map((n) => n.tap);
  assert.equal(present(ns, taps), taps);
  assert.equal(ovs.ports('ovsbr0'), [taps[1]]);
  assert.is(scratch.records().length, 1);
  assert.is(procUid(pid), alice.uid, 'the client runs as the ordinary user');

  const killed = Date.now();
  signal(pid, 'SIGKILL');
  await waitFor(() => present(ns, taps).length === 0 && ovs.ports('ovsbr0').length === 0 && scratch.records().length === 0,
    2000, { since: killed, what: 'taps, OVS port and session record to be gone', describe: () => `taps ${present(ns, taps).join(',')}; ports ${ovs.ports('ovsbr0').join(',')}; records ${scratch.records().join(',')}` });
  await holder.exited;
  const end = await helper.audit((a) => a.event === 'session-end' && JSON.stringify(a['taps']).includes(taps[0] ?? '?'), 1000, 'the session-end record');
  assert.is(end['result'], 'ok');
  assert.is(end['uid'], alice.uid);
});

test('the real client running qemu on the bridge is SIGKILLed: its tap is gone within 2 s, and qemu ends too', async () => {
  const xkvm = startXkvm(ns, bob.name, ['-n', 'br0', '--', '-m', '64', '-nographic', '-boot', 'n'], { XKVM_HELPER_SOCKET: scratch.socket });
  try {
    // The tap is in use (carrier up) once its fds are held: by the client first (fd handoff),
    // then by qemu, which must be running too.
    const { value: tap } = await waitFor(() => {
      const held = helperTaps(ns).find((d) => d.owner === bob.name && d.attached);
      return held !== undefined && findDescendant(xkvm.pid, (p) => p.comm.startsWith('qemu-system')) !== undefined ? held : undefined;
    }, 30_000, { what: 'qemu to run, holding a tap owned by the user', describe: () => `taps ${JSON.stringify(helperTaps(ns))}; stderr ${xkvm.stderr()}` });
    assert.is(tap.master, 'br0');
    const client = findDescendant(xkvm.pid, (p) => p.comm === 'node' && procUid(p.pid) === bob.uid);
    const qemu = findDescendant(xkvm.pid, (p) => p.comm.startsWith('qemu-system'));
    assert.ok(client !== undefined, 'the xkvm process');
    assert.ok(qemu !== undefined, 'the qemu process');
    assert.is(procUid(qemu.pid), bob.uid);

    const killed = Date.now();
    signal(client.pid, 'SIGKILL');
    await waitFor(() => present(ns, [tap.name]).length === 0 && scratch.records().length === 0, 2000,
      { since: killed, what: `tap ${tap.name} and the session record to be gone` });
    // The pty's hangup ends qemu (SIGHUP) when its client is gone.
    await waitFor(() => !isRunning(qemu.pid), PATIENCE_MS, { what: `qemu (pid ${qemu.pid}) to end after its client was killed` });
  } finally {
    await stop(xkvm);
  }
});

test.run();
