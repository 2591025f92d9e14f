import { readFileSync } from 'node:fs';
import type { NetDeps } from './deps.js';
import { NetError } from './errors.js';
import { ipBatch } from './ipbatch.js';
import { errorText, type Runner } from './runner.js';
import { bridgeTool, IP_TIMEOUT_MS } from './tools.js';
import type { BridgeKind, Nic } from './types.js';
import { checkIfname } from './validate.js';
import { vsctl } from './vsctl.js';

/*
 * VLAN access ports (the policy's `vlan BRIDGE VID WHO...`): a tap that carries VID untagged and
 * nothing else.
 * - Open vSwitch: the port is added with `tag=VID` in the transaction that adds it (ovsports.ts).
 *   On a fake (VLAN) bridge (`ovs-vsctl add-br FAKE PARENT V`) every port is already an access
 *   port of V: VID = V needs nothing more, another VID is refused (the port cannot be in both).
 * - Linux bridge: only with VLAN filtering on (/sys/class/net/BR/bridge/vlan_filtering = 1; the
 *   kernel needs CONFIG_BRIDGE_VLAN_FILTERING, without it the file does not exist). The tap is
 *   attached down, then `bridge vlan del dev TAP vid DEFAULT_PVID` (the VLAN the kernel gave the
 *   new port: the bridge's default_pvid, none when 0) and `bridge vlan add dev TAP vid VID pvid
 *   untagged` (one `bridge -batch -` for the request), and only then raised: a port that is down
 *   forwards nothing, so no frame passes before the VLAN is set. Without filtering the request is
 *   refused before anything is made (SYSTEM_ERROR naming the bridge and what to set).
 * Nothing is left to undo when the tap goes: the kernel drops a deleted port's VLANs, OVS a
 * deleted port's tag.
 */

const VID_MIN = 1;
const VID_MAX = 4094;
const SYS_NET = '/sys/class/net';

/** A Linux bridge's VLAN filtering as /sys shows it. */
export type VlanFiltering =
  | { readonly filtering: 'unsupported' | 'off' }
  /** `defaultPvid`: the VLAN a new port gets (untagged, as its PVID); 0 when none. */
  | { readonly filtering: 'on'; readonly defaultPvid: number };

/** Reads /sys/class/net/BRIDGE/bridge/{vlan_filtering,default_pvid}; no file: the kernel has no VLAN filtering. */
export function vlanFilteringOf(bridge: string): VlanFiltering {
  const dir = `${SYS_NET}/${checkIfname(bridge, 'bridge')}/bridge`;
  let text: string;
  try {
    text = readFileSync(`${dir}/vlan_filtering`, 'utf8').trim();
  } catch {
    return { filtering: 'unsupported' };
  }
  if (text !== '1') return { filtering: 'off' };
  let pvid = 1;
  try {
    const p = readFileSync(`${dir}/default_pvid`, 'utf8').trim();
    if (/^[0-9]{1,4}$/.test(p)) pvid = Number(p);
  } catch {
    // The kernel's own default.
  }
  return { filtering: 'on', defaultPvid: pvid };
}

/** One VLAN id a bridge, each undefined (none) or 1..4094; all undefined when absent; BAD_REQUEST otherwise. */
export function checkVlans(vlans: unknown, count: number): (number | undefined)[] {
  if (vlans === undefined) return Array.from({ length: count }, () => undefined);
  if (!Array.isArray(vlans) || vlans.length !== count) {
    throw new NetError('BAD_REQUEST', `vlans: expected a list of ${count} (one a bridge)`);
  }
  return vlans.map((v: unknown) => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < VID_MIN || v > VID_MAX) {
      throw new NetError('BAD_REQUEST', `vlans: each must be absent or an integer from ${VID_MIN} to ${VID_MAX}, not ${typeof v === 'number' ? v : typeof v}`);
    }
    return v;
  });
}

/**
 * The VLAN of each OVS bridge named (0 for a real bridge, V for a fake bridge of VLAN V), in ONE
 * ovs-vsctl run (`br-to-vlan` each); SYSTEM_ERROR when it fails.
 */
async function ovsBridgeVlans(run: Runner, ovsdb: string | undefined, bridges: readonly string[]): Promise<Map<string, number>> {
  if (bridges.length === 0) return new Map();
  const r = await vsctl(run, ovsdb, bridges.map((b) => ['br-to-vlan', b]));
  const lines = r.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (r.exitCode !== 0 || lines.length !== bridges.length || !lines.every((l) => /^[0-9]{1,4}$/.test(l))) {
    throw new NetError('SYSTEM_ERROR', `Open vSwitch: reading the VLAN of ${bridges.join(', ')} failed: ${errorText(r.stderr)}`, { cause: r });
  }
  return new Map(bridges.map((b, i) => [b, Number(lines[i])]));
}

/** What a request's bridges are, as far as its VLANs are concerned. */
export interface VlanBridges {
  readonly kinds: ReadonlyMap<string, BridgeKind>;
  readonly filtering: ReadonlyMap<string, VlanFiltering>;
  /** OVS bridges' own VLAN (ovsBridgeVlans); absent when it could not be read (`ovsProblem`). */
  readonly ovsVlans: ReadonlyMap<string, number>;
  readonly ovsProblem: NetError | undefined;
}

/**
 * The VLAN facts the requests need: each Linux bridge's filtering (from classifyBridges), and the
 * own VLAN of each OVS bridge a VLAN is asked on (one ovs-vsctl, only then; its failure is kept
 * as `ovsProblem`, the refusal of the requests that needed it).
 */
export async function vlanBridges(jobs: readonly { readonly bridges: readonly string[]; readonly vlans: readonly (number | undefined)[] }[],
  { kinds, filtering }: Pick<VlanBridges, 'kinds' | 'filtering'>, ovsdb: string | undefined, run: Runner): Promise<VlanBridges> {
  const ovs = new Set<string>();
  for (const job of jobs) {
    for (const [slot, bridge] of job.bridges.entries()) if (job.vlans[slot] !== undefined && kinds.get(bridge) === 'ovs') ovs.add(bridge);
  }
  try {
    return { kinds, filtering, ovsVlans: await ovsBridgeVlans(run, ovsdb, [...ovs]), ovsProblem: undefined };
  } catch (error) {
    if (!(error instanceof NetError)) throw error;
    return { kinds, filtering, ovsVlans: new Map(), ovsProblem: error };
  }
}

/**
 * Why the VLANs a request needs cannot be given here (checked before anything is made), or
 * undefined. SYSTEM_ERROR: the caller is allowed, the host cannot do what the policy says.
 */
export function vlanRefusal(bridges: readonly string[], vlans: readonly (number | undefined)[], host: VlanBridges): NetError | undefined {
  for (const [slot, bridge] of bridges.entries()) {
    const vid = vlans[slot];
    if (vid === undefined) continue;
    const grant = `the policy makes this tap on ${bridge} an access port of VLAN ${vid}`;
    if (host.kinds.get(bridge) === 'ovs') {
      const own = host.ovsVlans.get(bridge);
      if (own === undefined) return host.ovsProblem ?? new NetError('SYSTEM_ERROR', `${grant}, but the VLAN of ${bridge} is not known; no tap was made`);
      if (own !== 0 && own !== vid) {
        return new NetError('SYSTEM_ERROR', `${grant}, but ${bridge} is an Open vSwitch fake bridge of VLAN ${own} (every port on it is in VLAN ${own}); `
          + `an admin must fix the policy's vlan line or the bridge; no tap was made`);
      }
      continue;
    }
    const f = host.filtering.get(bridge);
    if (f?.filtering === 'on') continue;
    if (f?.filtering === 'off') {
      return new NetError('SYSTEM_ERROR', `${grant}, but ${bridge} does not filter VLANs: an admin must turn it on `
        + `(ip link set ${bridge} type bridge vlan_filtering 1); no tap was made`);
    }
    return new NetError('SYSTEM_ERROR', `${grant}, but this kernel has no bridge VLAN filtering (it needs CONFIG_BRIDGE_VLAN_FILTERING, `
      + `then: ip link set ${bridge} type bridge vlan_filtering 1); no tap was made`);
  }
  return undefined;
}

/** A tap on a VLAN-filtering Linux bridge to make an access port of `vid`. */
interface LinuxVlanTap {
  readonly tap: string;
  readonly bridge: string;
  readonly vid: number;
  /** The bridge's default_pvid (what the kernel gave the new port; 0: nothing). */
  readonly defaultPvid: number;
}

/** The `bridge -batch` lines: the default VLAN removed from each tap, VID added as its untagged PVID. */
function linuxVlanLines(taps: readonly LinuxVlanTap[]): string[] {
  return taps.flatMap(({ tap, vid, defaultPvid }) => {
    checkIfname(tap, 'tap');
    return [
      ...(defaultPvid === 0 ? [] : [`vlan del dev ${tap} vid ${defaultPvid}`]),
      `vlan add dev ${tap} vid ${vid} pvid untagged`,
    ];
  });
}

/** Runs linuxVlanLines in ONE `bridge -batch -` (it stops at the first failure); SYSTEM_ERROR if it fails. */
async function setLinuxVlans(run: Runner, taps: readonly LinuxVlanTap[]): Promise<void> {
  if (taps.length === 0) return;
  const r = await run({ file: bridgeTool(), args: ['-batch', '-'], input: `${linuxVlanLines(taps).join('\n')}\n`, timeoutMs: IP_TIMEOUT_MS });
  if (r.exitCode !== 0) {
    throw new NetError('SYSTEM_ERROR', `could not make ${taps.map((t) => `${t.tap} an access port of VLAN ${t.vid} on ${t.bridge}`).join(', ')}: `
      + `${errorText(r.stderr)}`, { cause: r });
  }
}

/**
 * Makes the nics with a VLAN on Linux bridges (attached down by the batch: TapJob.held) access
 * ports: one `bridge -batch` (setLinuxVlans), then one line to the long-lived ip raises them.
 * Throws SYSTEM_ERROR; the caller undoes the request.
 */
export async function makeLinuxAccessPorts(nics: readonly (Nic & { readonly vlan?: number })[],
  filtering: ReadonlyMap<string, VlanFiltering>, deps: NetDeps): Promise<void> {
  const taps = nics.flatMap(({ bridge, tap, type, vlan }): LinuxVlanTap[] => {
    const f = filtering.get(bridge);
    if (type !== 'brctl' || vlan === undefined) return [];
    return [{ tap, bridge, vid: vlan, defaultPvid: f?.filtering === 'on' ? f.defaultPvid : 1 }];
  });
  if (taps.length === 0) return;
  await setLinuxVlans(deps.run, taps);
  const outcome = await ipBatch(deps.batch, taps.map(({ tap }) => `link set dev ${tap} up`));
  if (!outcome.ok) throw new NetError('SYSTEM_ERROR', `could not bring up ${taps.map((t) => t.tap).join(', ')}: ${errorText(outcome.stderr)}`, { cause: outcome });
}
