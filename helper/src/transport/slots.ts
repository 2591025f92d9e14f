/**
 * Connection slots of the socket helper: each uid's open connections, in the order they were
 * accepted, and the helper's bound on all of them together.
 *
 * A connection takes a place the moment it is accepted (the kernel's SO_PEERCRED names its uid
 * at once), before the user's limit is known (that needs the user database). Once it is, the
 * connection is admitted if fewer than `limit` connections of the same uid were accepted before
 * it and are still open, else refused. So one uid's connections never count against another's,
 * and of many connections arriving together exactly the first `limit` are admitted.
 */
import { MAX_CONNECTIONS_LIMIT } from '../policy/values.js';

/**
 * All connections together, whoever holds them: a bound on the helper's own resources (file
 * descriptors, buffers), not a share; no user's max-connections can be larger.
 */
export const MAX_CONNECTIONS = MAX_CONNECTIONS_LIMIT;

export interface Slot {
  /** How many connections of the same uid, accepted before this one, are still open. */
  ahead(): number;
  /** Give the place up (idempotent). */
  release(): void;
}

export class ConnectionSlots {
  readonly #total: number;
  readonly #byUid = new Map<number, Set<object>>();
  #open = 0;

  constructor(total: number = MAX_CONNECTIONS) {
    this.#total = total;
  }

  /** Connections open now (admitted or waiting for their limit). */
  get open(): number {
    return this.#open;
  }

  /** A place for a connection of `uid` (undefined: the kernel did not say), or undefined when all are taken. */
  take(uid: number | undefined): Slot | undefined {
    if (this.#open >= this.#total) return undefined;
    this.#open += 1;
    const token = {};
    let set: Set<object> | undefined;
    if (uid !== undefined) {
      set = this.#byUid.get(uid);
      if (set === undefined) {
        set = new Set();
        this.#byUid.set(uid, set);
      }
      set.add(token);
    }
    let released = false;
    return {
      ahead: () => {
        if (set === undefined || released) return 0;
        let n = 0;
        for (const other of set) {
          if (other === token) break;
          n += 1;
        }
        return n;
      },
      release: () => {
        if (released) return;
        released = true;
        this.#open -= 1;
        if (set === undefined || uid === undefined) return;
        set.delete(token);
        if (set.size === 0) this.#byUid.delete(uid);
      },
    };
  }
}
