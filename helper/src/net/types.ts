import type { NetDeps } from './deps.js';

/** What kind of bridge a name is. */
export type BridgeKind = 'linux' | 'ovs';

/** How a tap is attached, as the reference prints it (`tapname:brctl|ovs`). */
type NicType = 'brctl' | 'ovs';

/** A tap and the bridge it is attached to. */
export interface Nic {
  readonly bridge: string;
  readonly tap: string;
  readonly type: NicType;
}

/**
 * A nic as made: with the MTU its tap has (its bridge's, read back from /sys after creation), and
 * the VLAN it is an access port of, when the request asked for one.
 */
export interface MadeNic extends Nic {
  readonly mtu: number;
  readonly vlan?: number;
}

/** An Open vSwitch port, named like its tap, on a bridge. */
export interface PortRef {
  readonly bridge: string;
  readonly tap: string;
}

/**
 * Who a tap is created for. Only the uid is set on the tap (`tuntap add … user UID`, like the
 * reference). `gid` is checked if given but deliberately NOT set as the tap's group: the kernel's
 * rule for a tap with both has changed between releases (owner AND group in most; owner OR group
 * in some 2025 stable kernels, where every member of the caller's primary group could attach).
 */
export interface TapOwner {
  readonly uid: number;
  readonly gid?: number | undefined;
}

/** Options every operation takes. */
export interface NetOptions {
  /**
   * ovs-vsctl's database (the policy's `ovsdb`, e.g. `unix:/run/openvswitch/db.sock`);
   * ovs-vsctl's default when undefined.
   */
  readonly ovsdb?: string | undefined;
  /**
   * FOR TESTS ONLY: stand-ins for running programs and drawing tap names. Production code
   * never sets this; see deps.ts.
   */
  readonly deps?: Partial<NetDeps> | undefined;
}
