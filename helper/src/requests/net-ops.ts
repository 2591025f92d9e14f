/** What the service needs from the network layer (helper/src/net), as an interface for tests. */
import type { Nic, Port } from '../../../shared/src/protocol/messages.js';

/** One make-nics request's taps: one per bridge for the owner, OVS ports tagged with `session`. */
interface TapRequest {
  bridges: readonly string[];
  owner: { uid: number; gid: number };
  session?: string | undefined;
}

/** A request's nics, or why it failed (nothing of it left behind). */
export type TapOutcome = { nics: Nic[] } | { error: Error };

export interface NetOps {
  /** Several requests at once; each outcome as if that request were made alone. */
  createTaps(requests: TapRequest[], opts: { ovsdb?: string }): Promise<TapOutcome[]>;
  /** With `owner`, taps and ports not owned by that uid are left alone. */
  deleteTaps(nics: Nic[], opts: { ovsdb?: string; owner?: number }): Promise<void>;
  ovsCleanup(ports: Port[], caller: { uid: number }, opts: { ovsdb?: string }): Promise<{
    removed: Port[];
    refused: Array<Port & { code: string; message: string }>;
  }>;
  /** Taps each uid owns on the host, not counting the names in `except`. */
  tapCounts(except?: ReadonlySet<string>): ReadonlyMap<number, number>;
}
