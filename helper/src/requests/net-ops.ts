/** What the service needs from the network layer (helper/src/net), as an interface for tests. */
import type { Nic, Port } from '../../../shared/src/protocol/messages.js';
import type { CreatedTap, PlannedTap } from '../net/linuxtaps.js';
import type { Devices } from '../records/ledger.js';

/** One make-nics request's taps: one per bridge for the owner, OVS ports tagged with `session`. */
export interface TapRequest {
  bridges: readonly string[];
  owner: { uid: number; gid: number };
  session?: string | undefined;
  /** Queues per tap, in the order of `bridges` (1..16; all 1 when absent): more than 1 makes a multi-queue tap. */
  queues?: readonly number[] | undefined;
  /** The VLAN each tap is an access port of (the policy's `vlan`), in the order of `bridges`; none when undefined. */
  vlans?: readonly (number | undefined)[] | undefined;
  /** The MAC each tap is locked to (policy `mac-lock`), in the order of `bridges`; undefined: not locked. */
  macs?: readonly (string | undefined)[] | undefined;
  /** Fd handoff: the taps are opened by the helper, not persistent; their fds come with the outcome. */
  fd?: boolean | undefined;
}

/**
 * A request's nics and each tap's interface index (undefined: gone when looked at), or why it
 * failed: nothing of it left behind but the taps in `left`, which could not be removed.
 */
export type TapOutcome =
  | { nics: Nic[]; ifindexes: readonly (number | undefined)[]; fds?: readonly (readonly number[])[] | undefined }
  | { error: Error; left?: readonly CreatedTap[] | undefined };

export interface NetOps extends Devices {
  /**
   * Several requests at once; each outcome as if that request were made alone. `beforeCreate`
   * is told the taps each ip batch is about to create (`job`: the index in `requests`) before
   * the batch runs; if it throws, the batch does not run.
   */
  createTaps(requests: TapRequest[], opts: { ovsdb?: string; beforeCreate?: (taps: readonly PlannedTap[]) => void }): Promise<TapOutcome[]>;
  /**
   * Deletes the taps and OVS ports of `nics` by name, whoever owns them; throws if some of it
   * failed. With `ifindex`, a tap is deleted only while its name still has that ifindex.
   */
  deleteTaps(nics: Array<Nic & { ifindex?: number | undefined }>, opts: { ovsdb?: string }): Promise<void>;
  ovsCleanup(ports: Port[], caller: { uid: number }, opts: { ovsdb?: string }): Promise<{
    removed: Port[];
    refused: Array<Port & { code: string; message: string }>;
  }>;
}
