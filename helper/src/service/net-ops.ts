/** What the service needs from the network layer (helper/src/net), as an interface for tests. */
import type { Nic, Port } from '../../../shared/src/protocol/messages.js';

export interface NetOps {
  createTaps(bridges: string[], owner: { uid: number; gid: number }, opts: { ovsdb?: string; session?: string }): Promise<Nic[]>;
  /** With `owner`, taps and ports not owned by that uid are left alone. */
  deleteTaps(nics: Nic[], opts: { ovsdb?: string; owner?: number }): Promise<void>;
  ovsCleanup(ports: Port[], caller: { uid: number }, opts: { ovsdb?: string }): Promise<{
    removed: Port[];
    refused: Array<Port & { code: string; message: string }>;
  }>;
  /** Taps uid owns on the host, not counting the names in `except`. */
  tapsOwnedBy(uid: number, except?: ReadonlySet<string>): number;
}
