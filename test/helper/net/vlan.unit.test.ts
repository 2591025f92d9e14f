// The Linux VLAN step at the network layer's deps boundary (a stand-in runner): the exact bridge(8)
// batch for a VLAN-filtering bridge, its failure as a SYSTEM_ERROR, and what is refused before
// anything is made where the host cannot give the policy's VLAN. (Real taps: vlan.test.ts.)
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { bridgeTool, NetError, setLinuxVlans, vlanRefusal, type RunRequest, type Runner, type VlanBridges } from '../../../helper/src/net/index.js';

function runner(exitCode = 0, stderr = ''): { run: Runner; asked: RunRequest[] } {
  const asked: RunRequest[] = [];
  return { asked, run: async (req) => (asked.push(req), { exitCode, stdout: '', stderr }) };
}

test('a filtering bridge\'s taps get one bridge -batch: the default PVID removed, the VID added as untagged PVID (no removal when default_pvid is 0)', async () => {
  const { run, asked } = runner();
  await setLinuxVlans(run, [
    { tap: 'xkvmaaaaaaaa', bridge: 'br0', vid: 20, defaultPvid: 1 },
    { tap: 'xkvmbbbbbbbb', bridge: 'br1', vid: 4094, defaultPvid: 0 },
    { tap: 'xkvmcccccccc', bridge: 'br2', vid: 7, defaultPvid: 7 },
  ]);
  assert.equal(asked.map(({ file, args, input }) => ({ file, args, input })), [{
    file: bridgeTool(), args: ['-batch', '-'],
    input: 'vlan del dev xkvmaaaaaaaa vid 1\nvlan add dev xkvmaaaaaaaa vid 20 pvid untagged\n'
      + 'vlan add dev xkvmbbbbbbbb vid 4094 pvid untagged\n'
      + 'vlan del dev xkvmcccccccc vid 7\nvlan add dev xkvmcccccccc vid 7 pvid untagged\n',
  }]);
  const none = runner();
  await setLinuxVlans(none.run, []);
  assert.equal(none.asked, [], 'nothing to do runs nothing');
});

test('a failing bridge batch is a SYSTEM_ERROR naming the tap, its VLAN, its bridge and bridge\'s own words', async () => {
  const { run } = runner(1, 'RTNETLINK answers: Operation not supported\nCommand failed -:1\n');
  try {
    await setLinuxVlans(run, [{ tap: 'xkvmaaaaaaaa', bridge: 'br0', vid: 20, defaultPvid: 1 }]);
    assert.unreachable('it failed');
  } catch (e) {
    assert.ok(e instanceof NetError);
    assert.is(e.code, 'SYSTEM_ERROR');
    assert.match(e.message, /could not make xkvmaaaaaaaa an access port of VLAN 20 on br0: RTNETLINK answers: Operation not supported; Command failed -:1/);
  }
});

test('a tap name that could break the batch never reaches bridge(8)', async () => {
  const { run, asked } = runner();
  for (const tap of ['a b', 'x\nvlan add dev eth0 vid 5', '']) {
    try {
      await setLinuxVlans(run, [{ tap, bridge: 'br0', vid: 20, defaultPvid: 1 }]);
      assert.unreachable('refused');
    } catch (e) {
      assert.ok(e instanceof NetError && e.code === 'BAD_NAME', String(e));
    }
  }
  assert.equal(asked, []);
});

const host = (over: Partial<VlanBridges>): VlanBridges => ({
  kinds: new Map([['br0', 'linux'], ['ovsbr0', 'ovs'], ['fake10', 'ovs']]),
  filtering: new Map([['br0', { filtering: 'on', defaultPvid: 1 }]]),
  ovsVlans: new Map([['ovsbr0', 0], ['fake10', 10]]),
  ovsProblem: undefined,
  ...over,
});

test('what cannot be given is refused before anything is made: no filtering, no kernel support, another VLAN than a fake bridge\'s; the rest passes', () => {
  assert.is(vlanRefusal(['br0', 'ovsbr0', 'fake10'], [20, 30, 10], host({})), undefined);
  assert.is(vlanRefusal(['br0'], [undefined], host({ filtering: new Map([['br0', { filtering: 'unsupported' }]]) })), undefined, 'no VLAN asked: nothing to refuse');
  const off = vlanRefusal(['br0'], [20], host({ filtering: new Map([['br0', { filtering: 'off' }]]) }));
  assert.is(off?.code, 'SYSTEM_ERROR');
  assert.match(off?.message ?? '', /on br0 an access port of VLAN 20, but br0 does not filter VLANs: an admin must turn it on \(ip link set br0 type bridge vlan_filtering 1\)/);
  const kernel = vlanRefusal(['br0'], [20], host({ filtering: new Map([['br0', { filtering: 'unsupported' }]]) }));
  assert.match(kernel?.message ?? '', /this kernel has no bridge VLAN filtering \(it needs CONFIG_BRIDGE_VLAN_FILTERING/);
  const fake = vlanRefusal(['fake10'], [20], host({}));
  assert.match(fake?.message ?? '', /fake10 is an Open vSwitch fake bridge of VLAN 10/);
  const problem = new NetError('SYSTEM_ERROR', 'Open vSwitch: reading the VLAN of ovsbr0 failed');
  assert.is(vlanRefusal(['ovsbr0'], [20], host({ ovsVlans: new Map(), ovsProblem: problem })), problem);
});

test.run();
