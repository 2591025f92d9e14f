/**
 * Admission of a socket connection: a place among all connections and among its uid's own
 * (transport/slots.ts), against the policy's `max-connections` for that uid, and the refusal of
 * one too many.
 */
import type { Socket } from 'node:net';
import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { encodeBody } from '../../../shared/src/protocol/decode.js';
import { encodeFrame } from '../../../shared/src/protocol/frame.js';
import type { AuditLog } from '../audit/audit.js';
import type { Caller } from '../identity/caller.js';
import { maxConnections, maxConnectionsCeiling, type TapLimit } from '../policy/evaluate.js';
import type { PolicyHolder } from '../policy/holder.js';
import type { Policy } from '../policy/types.js';
import { DEFAULT_MAX_CONNECTIONS } from '../policy/values.js';
import { ConnectionSlots, MAX_CONNECTIONS } from './slots.js';

/**
 * Who may hold how many connections (policy `max-connections`), and the refusal of one too
 * many: an error reply naming the limit (id 0: no request was read), then the socket closes.
 */
export class Admission {
  readonly slots = new ConnectionSlots();
  readonly #policy: PolicyHolder;
  readonly #audit: AuditLog;
  /**
   * Each uid's limit when it was last worked out under the policy in force (#knownFor), to
   * refuse at once what is surely beyond it.
   */
  readonly #known = new Map<number, number>();
  #knownFor: Policy | undefined;

  constructor(policy: PolicyHolder, audit: AuditLog) {
    this.#policy = policy;
    this.#audit = audit;
  }

  /** A limit no connection of `uid` can be admitted beyond, known without the user database. */
  ceiling(uid: number): number {
    const policy = this.#current();
    if (policy === undefined) return DEFAULT_MAX_CONNECTIONS;
    return this.#known.get(uid) ?? maxConnectionsCeiling(policy);
  }

  /** The policy in force (undefined while it is broken); what was known under another is forgotten. */
  #current(): Policy | undefined {
    const current = this.#policy.current();
    const policy = 'policy' in current ? current.policy : undefined;
    if (policy !== this.#knownFor || this.#known.size > MAX_CONNECTIONS) {
      this.#known.clear();
      this.#knownFor = policy;
    }
    return policy;
  }

  /** The limit of `caller` (of `uid`, with no name or groups, when it could not be identified). */
  limit(uid: number, caller: Caller | undefined): TapLimit {
    const policy = this.#current();
    if (policy === undefined) return { limit: DEFAULT_MAX_CONNECTIONS, from: 'built-in' };
    const limit = maxConnections(policy, { name: caller?.user.name ?? '', uid, groups: caller?.user.groups ?? [] });
    this.#known.set(uid, limit.limit);
    return limit;
  }

  /** Reply with `message` (QUOTA), close, and audit it; `closed` runs once the socket is closed. */
  refuse(socket: Socket, peer: { uid: number; pid: number } | undefined, message: string, closed: () => void): void {
    this.#audit.write({ event: 'connection', result: 'refused', code: ErrorCode.Quota, message, uid: peer?.uid, pid: peer?.pid });
    if (socket.destroyed) {
      closed();
      return;
    }
    socket.once('close', closed);
    socket.end(encodeFrame(encodeBody({ v: 1, id: 0, ok: false, error: { code: ErrorCode.Quota, message } })));
    setImmediate(() => socket.destroy());
  }
}

export function overLimit(who: string, open: number, limit: TapLimit): string {
  const where = limit.rule === undefined ? 'the default' : `${limit.rule.file}:${limit.rule.line}`;
  return `${who} already has ${open} connection${open === 1 ? '' : 's'} open to the helper, and max-connections allows ${limit.limit} (${where}): close one first`;
}
