// The Linux VLAN step at the network layer's deps boundary (a stand-in runner and ip batch): the
// exact bridge(8) batch for a VLAN-filtering bridge and the line that raises the taps after it,
// its failure as a SYSTEM_ERROR (nothing raised), and what is refused before anything is made
// where the host cannot give the policy's VLAN. (Real taps and the roll-back: vlan.test.ts.)
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import {
  bridgeTool, makeLinuxAccessPorts, NetError, randomTapName, vlanFilteringOf, vlanRefusal, type NetDeps, type Nic, type VlanBridges, type VlanFiltering,
} from '../../../helper/src/net/index.js';

/** Stand-ins recording each program (file, args, stdin) and each ip batch, bridge(8) answering `exitCode`. */
function standIns(exitCode = 0, stderr = ''): { deps: NetDeps; asked: { file: string; args: readonly string[]; input?: string | undefined }[]; batches: string[][] } {
  const asked: { file: string; args: readonly string[]; input?: string | undefined }[] = [];
  const batches: string[][] = [];
  return {
    asked, batches,
    deps: {
      run: async ({ file, args, input }) => (asked.push({ file, args, input }), { exitCode, stdout: '', stderr }),
      batch: async (lines) => (batches.push([...lines]), { ok: true, failedLines: [], stderr: '' }),
      tapName: randomTapName, vlanFiltering: vlanFilteringOf, openTap: () => { throw new Error('no tap may be opened'); },
    },
  };
}

const on = (defaultPvid: number): VlanFiltering => ({ filtering: 'on', defaultPvid });
const nic = (tap: string, bridge: string, vlan?: number, type: Nic['type'] = 'brctl'): Nic & { vlan?: number } =>
  ({ tap, bridge, type, ...(vlan === undefined ? {} : { vlan }) });

test('a filtering bridge\'s taps get one bridge -batch: the default PVID removed, the VID added as untagged PVID (no removal when default_pvid is 0)', async () => {
  const { deps, asked, batches } = standIns();
  await makeLinuxAccessPorts([
    nic('xkvmaaaaaaaa', 'br0', 20), nic('xkvmplainnnn', 'br0'), nic('xkvmbbbbbbbb', 'br1', 4094), nic('xkvmovsportt', 'ovsbr0', 5, 'ovs'),
    nic('xkvmcccccccc', 'br2', 7),
  ], new Map([['br0', on(1)], ['br1', on(0)], ['br2', on(7)]]), deps);
  assert.equal(asked, [{
    file: bridgeTool(), args: ['-batch', '-'],
    input: 'vlan del dev xkvmaaaaaaaa vid 1\nvlan add dev xkvmaaaaaaaa vid 20 pvid untagged\n'
      + 'vlan add dev xkvmbbbbbbbb vid 4094 pvid untagged\n'
      + 'vlan del dev xkvmcccccccc vid 7\nvlan add dev xkvmcccccccc vid 7 pvid untagged\n',
  }]);
  assert.equal(batches, [['link set dev xkvmaaaaaaaa up', 'link set dev xkvmbbbbbbbb up', 'link set dev xkvmcccccccc up']], 'raised after, in one batch');
  const none = standIns();
  await makeLinuxAccessPorts([nic('xkvmplainnnn', 'br0'), nic('xkvmovsportt', 'ovsbr0', 5, 'ovs')], new Map([['br0', on(1)]]), none.deps);
  assert.equal([none.asked, none.batches], [[], []], 'nothing to do runs nothing');
});

test('a failing bridge batch is a SYSTEM_ERROR naming the tap, its VLAN, its bridge and bridge\'s own words, and nothing is raised', async () => {
  const { deps, batches } = standIns(1, 'RTNETLINK answers: Operation not supported\nCommand failed -:1\n');
  try {
    await makeLinuxAccessPorts([nic('xkvmaaaaaaaa', 'br0', 20)], new Map([['br0', on(1)]]), deps);
    assert.unreachable('it failed');
  } catch (e) {
    assert.ok(e instanceof NetError);
    assert.is(e.code, 'SYSTEM_ERROR');
    assert.match(e.message, /could not make xkvmaaaaaaaa an access port of VLAN 20 on br0: RTNETLINK answers: Operation not supported; Command failed -:1/);
  }
  assert.equal(batches, []);
});

test('a tap name that could break the batch never reaches bridge(8)', async () => {
  const { deps, asked, batches } = standIns();
  for (const tap of ['a b', 'x\nvlan add dev eth0 vid 5', '']) {
    try {
      await makeLinuxAccessPorts([nic(tap, 'br0', 20)], new Map([['br0', on(1)]]), deps);
      assert.unreachable('refused');
    } catch (e) {
      assert.ok(e instanceof NetError && e.code === 'BAD_NAME', String(e));
    }
  }
  assert.equal([asked, batches], [[], []]);
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
