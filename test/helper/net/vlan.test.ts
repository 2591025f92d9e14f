// VLAN access ports at the network layer, for real in fresh network namespaces (root): an OVS
// port is created with its tag, and frames a guest writes into it reach its VLAN's ports and no
// other VLAN's (and an OVS fake bridge's own VLAN is accepted, another refused);
// a Linux bridge without VLAN filtering is refused before anything runs. This kernel has no bridge
// VLAN filtering, so the Linux path's commands are checked with two stand-ins at the layer's deps
// boundary (the bridge's filtering, and bridge(8) itself): real taps, real ip, real roll-back.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { MadeNic } from '../../../helper/src/net/index.js';
import { bridgeTool } from '../../../helper/src/net/tools.js';
import { createNetns, sweepStaleNetns, type Netns } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import { devices, requireRoot, runJob, tapsLike, value, withNetns } from './support.js';

const OWNER = { uid: 4302, gid: 4302 };
const FILTERING = { filtering: 'on', defaultPvid: 1 } as const;

test.before(() => {
  requireRoot();
  sweepStaleNetns();
});

function withOvs(fn: (ns: Netns, ovs: Ovs) => void): () => void {
  return () => {
    requireRoot();
    const ns = createNetns({ bridges: ['br0'] });
    let ovs: Ovs | undefined;
    try {
      ovs = startOvs(ns, { bridges: ['ovsbr0'] });
      fn(ns, ovs);
    } finally {
      ovs?.stop();
      ns.destroy();
    }
  };
}

test('an OVS port for a VLAN is created with tag=VID in the transaction that adds it, and deleting it leaves no port and no tag', withOvs((ns, ovs) => {
  const out = runJob(ns, { op: 'create', bridges: ['ovsbr0', 'ovsbr0'], owner: OWNER, vlans: [20, null], ovsdb: ovs.db });
  const [tagged, plain] = value<MadeNic[]>(out);
  assert.is(tagged?.vlan, 20, 'the nic says its VLAN');
  assert.is(plain?.vlan, undefined);
  assert.is(ovs.vsctl('get', 'Port', tagged?.tap ?? '', 'tag').trim(), '20');
  assert.is(ovs.vsctl('get', 'Port', plain?.tap ?? '', 'tag').trim(), '[]');
  const adds = out.calls.filter((c) => c.args.includes('add-port')).map((c) => c.args.join(' '));
  assert.is(adds.length, 1, 'one ovs-vsctl adds the ports');
  assert.match(adds[0] ?? '', new RegExp(`add-port ovsbr0 ${tagged?.tap ?? ''} tag=20 `));
  const nics = [tagged, plain].map((n) => ({ bridge: n?.bridge ?? '', tap: n?.tap ?? '', type: 'ovs' as const }));
  value(runJob(ns, { op: 'delete', nics, ovsdb: ovs.db }));
  assert.equal(ovs.ports('ovsbr0'), []);
  assert.is(ovs.vsctl('--columns=name', 'find', 'Port', 'tag=20').trim(), '', 'no port is left with the tag');
  assert.equal(tapsLike(ns, 'xkvm'), []);
}));

/**
 * Writes broadcast frames (ethertype 0x88b5, a marker payload) into tap argv[1] as the guest would
 * (TUNSETIFF on /dev/net/tun; one every 50 ms), listening on the devices argv[2:] (AF_PACKET), until the first
 * device sees the marker (at most ~10 s); then half a second more for the others. Prints each
 * device's count of marker frames as JSON.
 */
const FRAMES = `
import fcntl, json, os, select, socket, struct, sys, time
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454ca, 0x0002, 0x1000
tap, devs = sys.argv[1], sys.argv[2:]
marker = b'xkvm-vlan-test-' + os.urandom(8).hex().encode()
socks = {}
for d in devs:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((d, 0))
    s.setblocking(False)
    socks[s] = d
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH22x', tap.encode(), IFF_TAP | IFF_NO_PI))
frame = bytes.fromhex('ffffffffffff525400003001' + '88b5') + marker + bytes(20)
seen = {d: 0 for d in devs}
end = time.time() + 10
first = None
due = 0
while time.time() < end and (first is None or time.time() < first + 0.5):
    if time.time() >= due:
        os.write(fd, frame)
        due = time.time() + 0.05
    for s in select.select(list(socks), [], [], 0.05)[0]:
        while True:
            try:
                data = s.recv(2048)
            except BlockingIOError:
                break
            if marker in data:
                seen[socks[s]] += 1
                if first is None:
                    first = time.time()
print(json.dumps(seen))
`;

/** Which of `devices` the frames written into `tap` reach (marker frames counted per device). */
function framesReach(ns: Netns, tap: string, devices: string[]): Record<string, number> {
  const r = ns.exec(['/usr/bin/python3', '-c', FRAMES, tap, ...devices], { timeoutMs: 30_000 });
  if (r.status !== 0) throw new Error(`writing frames into ${tap} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, number>;
}

test('frames from a VLAN 30 access port reach a VLAN 30 port of the OVS bridge and never a VLAN 31 one (and the other way round)', withOvs((ns, ovs) => {
  for (const [port, tag] of [['in30', '30'], ['in31', '31']] as const) {
    ovs.vsctl('add-port', 'ovsbr0', port, `tag=${tag}`, '--', 'set', 'Interface', port, 'type=internal');
    ns.ip('link', 'set', 'dev', port, 'up');
  }
  const nics = value<MadeNic[]>(runJob(ns, { op: 'create', bridges: ['ovsbr0', 'ovsbr0'], owner: OWNER, vlans: [30, 31], ovsdb: ovs.db }));
  const [in30, in31] = nics.map((n) => framesReach(ns, n.tap, ['in30', 'in31']));
  assert.ok((in30?.['in30'] ?? 0) > 0, `VLAN 30's port got the VLAN 30 guest's frames: ${JSON.stringify(in30)}`);
  assert.is(in30?.['in31'], 0, `VLAN 31's port got none of them: ${JSON.stringify(in30)}`);
  assert.ok((in31?.['in31'] ?? 0) > 0, `VLAN 31's port got the VLAN 31 guest's frames: ${JSON.stringify(in31)}`);
  assert.is(in31?.['in30'], 0, `VLAN 30's port got none of them: ${JSON.stringify(in31)}`);
}));

test('on an OVS fake bridge of VLAN 10, VLAN 10 is granted as it is; VLAN 20 is refused naming the fake bridge, and nothing is left', withOvs((ns, ovs) => {
  ovs.vsctl('add-br', 'fake10', 'ovsbr0', '10');
  const [nic] = value<MadeNic[]>(runJob(ns, { op: 'create', bridges: ['fake10'], owner: OWNER, vlans: [10], ovsdb: ovs.db }));
  assert.is(nic?.vlan, 10);
  assert.is(ovs.vsctl('port-to-br', nic?.tap ?? '').trim(), 'fake10');
  assert.is(ovs.vsctl('get', 'Port', nic?.tap ?? '', 'tag').trim(), '10');
  value(runJob(ns, { op: 'delete', nics: [{ bridge: 'fake10', tap: nic?.tap ?? '', type: 'ovs' }], ovsdb: ovs.db }));

  const out = runJob(ns, { op: 'create', bridges: ['fake10'], owner: OWNER, vlans: [20], ovsdb: ovs.db });
  assert.is(out.ok, false);
  if (!out.ok) {
    assert.is(out.error.code, 'SYSTEM_ERROR');
    assert.match(out.error.message, /fake10 is an Open vSwitch fake bridge of VLAN 10/);
    assert.match(out.error.message, /VLAN 20/);
  }
  assert.equal(out.calls.filter((c) => c.args.includes('add-port') || c.args.join(' ').includes('tuntap add')), [], 'nothing was made');
  assert.equal(tapsLike(ns, 'xkvm'), []);
  assert.equal(ovs.ports('fake10'), []);
}));

test('a VLAN on a Linux bridge that does not filter VLANs (as /sys says here) is refused naming the bridge and what to set, before any program runs', withNetns(['br0'], (ns) => {
  const out = runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER, vlans: [20] });
  assert.is(out.ok, false);
  if (!out.ok) {
    assert.is(out.error.code, 'SYSTEM_ERROR');
    assert.match(out.error.message, /on br0 an access port of VLAN 20/);
    assert.match(out.error.message, /ip link set br0 type bridge vlan_filtering 1/);
  }
  assert.equal(out.calls, [], 'no program ran, no batch was written');
  assert.equal(tapsLike(ns, 'xkvm'), []);
}));

test('on a VLAN-filtering Linux bridge (stand-in) the tap is attached down, given VID as untagged PVID and no default VLAN by one bridge batch, then raised', withNetns(['br0'], (ns) => {
  const out = runJob(ns, {
    op: 'create', bridges: ['br0', 'br0'], owner: OWNER, vlans: [20, null], filtering: FILTERING,
    bridgeProgram: { exitCode: 0, stderr: '' }, names: ['xkvmvlan0001', 'xkvmvlan0002'],
  });
  const nics = value<MadeNic[]>(out);
  assert.equal(nics.map((n) => [n.tap, n.vlan]), [['xkvmvlan0001', 20], ['xkvmvlan0002', undefined]]);
  const [create, bridge, raise, ...rest] = out.calls;
  assert.equal(rest, []);
  assert.match(create?.input ?? '', /^link set dev xkvmvlan0001 mtu 1500 master br0$/m, 'the VLAN tap is attached without up');
  assert.match(create?.input ?? '', /^link set dev xkvmvlan0002 mtu 1500 up master br0$/m, 'the other one is raised as always');
  assert.equal(bridge, { file: bridgeTool(), args: ['-batch', '-'], input: 'vlan del dev xkvmvlan0001 vid 1\nvlan add dev xkvmvlan0001 vid 20 pvid untagged\n' });
  assert.is(raise?.input, 'link set dev xkvmvlan0001 up\n');
  assert.ok(devices(ns).get('xkvmvlan0001')?.up, 'raised at the end');
}));

test('a bridge whose default_pvid is 0 gives new ports no VLAN: only the access VLAN is added', withNetns(['br0'], (ns) => {
  const out = runJob(ns, {
    op: 'create', bridges: ['br0'], owner: OWNER, vlans: [4094], filtering: { filtering: 'on', defaultPvid: 0 },
    bridgeProgram: { exitCode: 0, stderr: '' }, names: ['xkvmvlan0003'],
  });
  value(out);
  assert.equal(out.calls.filter((c) => c.file === bridgeTool()).map((c) => c.input), ['vlan add dev xkvmvlan0003 vid 4094 pvid untagged\n']);
}));

test('a failing bridge vlan command fails the request: its taps (the VLAN one never raised) are removed, nothing is left', withNetns(['br0', 'br1'], (ns) => {
  const out = runJob(ns, {
    op: 'create', bridges: ['br0', 'br1'], owner: OWNER, vlans: [20, null], filtering: FILTERING,
    bridgeProgram: { exitCode: 1, stderr: 'RTNETLINK answers: Operation not supported\nCommand failed -:1\n' },
  });
  assert.is(out.ok, false);
  if (!out.ok) {
    assert.is(out.error.code, 'SYSTEM_ERROR');
    assert.match(out.error.message, /an access port of VLAN 20 on br0: RTNETLINK answers: Operation not supported/);
  }
  assert.ok(out.calls.some((c) => c.file === bridgeTool()), 'bridge(8) was asked');
  assert.not.ok(out.calls.some((c) => /^link set dev \S+ up$/m.test(c.input ?? '')), 'the VLAN tap was never raised');
  assert.equal(tapsLike(ns, 'xkvm'), []);
}));

test('vlans outside 1..4094, or not one a bridge, are BAD_REQUEST and no program runs', withNetns(['br0'], (ns) => {
  for (const vlans of [[0], [4095], [2.5], ['20'], [20, 20]]) {
    const out = runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER, vlans });
    assert.is(out.ok, false, JSON.stringify(vlans));
    if (!out.ok) {
      assert.is(out.error.code, 'BAD_REQUEST');
      assert.match(out.error.message, /vlans/);
    }
    assert.is(out.calls.length, 0);
  }
}));

test.run();
