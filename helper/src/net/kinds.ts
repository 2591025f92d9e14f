import { resolveDeps } from './deps.js';
import { NetError } from './errors.js';
import { errorText } from './runner.js';
import { ifindexOf } from './ifindex.js';
import { isLinuxBridge, mtuOf } from './sysfs.js';
import { ovsInstalled } from './tools.js';
import type { BridgeKind, NetOptions } from './types.js';
import { checkIfname, checkOvsdb } from './validate.js';
import type { VlanFiltering } from './vlan.js';
import { vsctl } from './vsctl.js';

/** What each bridge is, and which names are no bridge at all (with why OVS did not say, if so). */
export interface BridgeClasses {
  readonly kinds: ReadonlyMap<string, BridgeKind>;
  /**
   * Each Linux bridge's ifindex when it was checked: the device its taps must end up attached
   * to (a bridge renamed and another made under its name is another device).
   */
  readonly ifindexes: ReadonlyMap<string, number>;
  /**
   * Each bridge's MTU when it was checked (/sys/class/net/NAME/mtu; for OVS, its internal
   * interface's): what its taps are given. Absent for an OVS bridge with no device in /sys.
   */
  readonly mtus: ReadonlyMap<string, number>;
  /** Each Linux bridge's VLAN filtering when it was checked (what a `vlan` grant needs: vlan.ts). */
  readonly filtering: ReadonlyMap<string, VlanFiltering>;
  readonly missing: ReadonlySet<string>;
  readonly note: string;
}

/** The ifindex of `name` if it is a Linux bridge now; undefined otherwise. */
export function linuxBridgeIndex(name: string): number | undefined {
  const index = ifindexOf(name);
  // Read before and after the kind: a device renamed in between is not taken for the other.
  return index !== undefined && isLinuxBridge(name) && ifindexOf(name) === index ? index : undefined;
}

/**
 * The kind of each bridge: Linux when /sys/class/net/NAME/bridge exists (no process spawned; its
 * ifindex is read with it);
 * for the others ONE `ovs-vsctl list-br` (one bridge a line, so any number of OVS bridges),
 * asked only when ovs-vsctl is installed. A name that is neither is missing — also when Open
 * vSwitch is installed but does not answer (then it has no usable bridge either); `note` says so.
 */
export async function classifyBridges(bridges: readonly string[], opts: NetOptions = {}): Promise<BridgeClasses> {
  for (const b of bridges) checkIfname(b, 'bridge');
  const ovsdb = checkOvsdb(opts.ovsdb);
  const { run, vlanFiltering } = resolveDeps(opts.deps);

  const kinds = new Map<string, BridgeKind>();
  const ifindexes = new Map<string, number>();
  const mtus = new Map<string, number>();
  const filtering = new Map<string, VlanFiltering>();
  const unknown: string[] = [];
  for (const b of bridges) {
    if (kinds.has(b) || unknown.includes(b)) continue;
    const index = linuxBridgeIndex(b);
    if (index === undefined) {
      unknown.push(b);
    } else {
      kinds.set(b, 'linux');
      ifindexes.set(b, index);
      setMtu(mtus, b);
      filtering.set(b, vlanFiltering(b));
    }
  }
  if (unknown.length === 0) return { kinds, ifindexes, mtus, filtering, missing: new Set(), note: '' };

  let ovsBridges = new Set<string>();
  let note = ovsInstalled() ? '' : '; Open vSwitch is not installed';
  if (note === '') {
    const r = await vsctl(run, ovsdb, [['list-br']]);
    if (r.exitCode === 0) ovsBridges = new Set(r.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== ''));
    // An OVS that does not answer has no usable bridge: say so, it may be what the caller meant.
    else note = `; Open vSwitch did not answer (${errorText(r.stderr)})`;
  }
  for (const b of unknown) {
    if (!ovsBridges.has(b)) continue;
    kinds.set(b, 'ovs');
    setMtu(mtus, b);
  }
  return { kinds, ifindexes, mtus, filtering, missing: new Set(unknown.filter((b) => !ovsBridges.has(b))), note };
}

function setMtu(mtus: Map<string, number>, bridge: string): void {
  const mtu = mtuOf(bridge);
  if (mtu !== undefined) mtus.set(bridge, mtu);
}

/** NO_SUCH_BRIDGE naming those of `bridges` that classifyBridges found missing; undefined if none. */
export function missingBridges(bridges: readonly string[], classes: BridgeClasses): NetError | undefined {
  const missing = bridges.filter((b, i) => classes.missing.has(b) && bridges.indexOf(b) === i);
  if (missing.length === 0) return undefined;
  const what = missing.length === 1 ? 'no such bridge' : 'no such bridges';
  return new NetError('NO_SUCH_BRIDGE', `${what}: ${missing.join(', ')} (not a Linux bridge, not an Open vSwitch bridge${classes.note})`);
}
