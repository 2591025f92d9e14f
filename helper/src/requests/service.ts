/**
 * The two operations, for an identified caller, within the policy: make-nics (policy, quota,
 * all-or-nothing creation, session bookkeeping) and ovs-cleanup (the caller's own ports only).
 * Each request leaves exactly one audit record.
 */
import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import type { MakeNicsRequest, Nic, OvsCleanupRequest, Reply, Request } from '../../../shared/src/protocol/messages.js';
import type { AuditLog } from '../audit/audit.js';
import { decide, maxTaps } from '../policy/evaluate.js';
import type { Policy } from '../policy/types.js';
import type { ProcessRef, SessionStore } from '../records/store.js';
import type { Caller } from '../identity/caller.js';
import { toWireError } from './wire-error.js';
import type { NetOps } from './net-ops.js';
import type { PolicyHolder } from '../policy/holder.js';

/** The taps a connection holds with lifetime "session". */
export interface Session {
  id: string;
  nics: Nic[];
}

export interface ServiceDeps {
  policy: PolicyHolder;
  net: NetOps;
  audit: AuditLog;
  store: SessionStore;
  helper: ProcessRef;
  log: (message: string) => void;
  /** Take the host-wide quota lock; resolves with its release. */
  lock: () => Promise<() => void>;
}

/**
 * Most requests in one batch (each up to 64 taps): bounds one ip batch and one wait.
 * @internal Exported for the test that fills more than one batch.
 */
export const MAX_BATCH = 32;

/** A make-nics request allowed by the policy, waiting for its taps. */
interface Waiting {
  readonly request: MakeNicsRequest;
  readonly caller: Caller;
  readonly session: Session;
  readonly lifetime: 'session' | 'persistent';
  readonly limit: number;
  readonly resolve: (nics: Nic[]) => void;
  readonly reject: (error: unknown) => void;
}

export class Service {
  readonly #deps: ServiceDeps;
  /**
   * make-nics requests that arrived while a batch was being made; they go together into the
   * next one (group commit: of 16 requests at once, the last waits for a few batches, not for
   * 15 others one by one).
   */
  #waiting: Waiting[] = [];
  #making = false;
  /**
   * Taps being removed right now (a deletion waits ~30 ms a tap in the kernel): they no longer
   * count against their owner's max-taps, so a user who ends a VM and starts another is not
   * refused for taps on their way out.
   */
  readonly #removing = new Set<string>();

  constructor(deps: ServiceDeps) {
    this.#deps = deps;
  }

  #policy(): Policy {
    const current = this.#deps.policy.current();
    if ('error' in current) {
      throw new ProtocolError(ErrorCode.Denied, `the helper's policy (${this.#deps.policy.file}) is broken, so everything is denied until an admin fixes it`);
    }
    this.#deps.audit.setFile(current.policy.auditLog?.value);
    return current.policy;
  }

  async handle(request: Request, caller: Caller, session: Session): Promise<Reply> {
    const who = { uid: caller.uid, user: caller.user.name, pid: caller.pid, transport: caller.transport };
    try {
      const reply = request.op === 'make-nics'
        ? await this.#makeNics(request, caller, session)
        : await this.#ovsCleanup(request, caller);
      return reply;
    } catch (error) {
      const wire = toWireError(error, this.#deps.log);
      this.#deps.audit.write({ event: 'request', op: request.op, caller: who, request: summary(request), decision: wire.code === ErrorCode.Denied ? 'deny' : undefined, result: 'error', code: wire.code, message: wire.message });
      return { v: 1, id: request.id, ok: false, error: { code: wire.code, message: wire.message } };
    }
  }

  async #makeNics(request: MakeNicsRequest, caller: Caller, session: Session): Promise<Reply> {
    const policy = this.#policy();
    const lifetime = request.lifetime ?? 'session';
    const user = { name: caller.user.name, uid: caller.uid, groups: caller.user.groups };
    const decisions = request.bridges.map((bridge) => ({ bridge, decision: decide(policy, user, bridge) }));
    const denied = decisions.find((d) => !d.decision.allowed);
    if (denied !== undefined) {
      const where = denied.decision.rule === undefined
        ? ` (policy ${this.#deps.policy.file})`
        : ` (${denied.decision.rule.file}:${denied.decision.rule.line})`;
      throw new ProtocolError(ErrorCode.Denied, `${caller.user.name} may not put a tap on ${denied.bridge}: ${denied.decision.reason}${where}`);
    }
    const limit = maxTaps(policy, user).limit;
    const nics = await new Promise<Nic[]>((resolve, reject) => {
      this.#waiting.push({ request, caller, session, lifetime, limit, resolve, reject });
      if (!this.#making) void this.#makeWaiting();
    });
    if (lifetime === 'session') {
      session.nics.push(...nics);
      this.#record(session, caller);
    }
    this.#deps.audit.write({
      event: 'request', op: 'make-nics', caller: { uid: caller.uid, user: caller.user.name, pid: caller.pid, transport: caller.transport },
      request: summary(request), decision: 'allow', rules: decisions.map((d) => d.decision.rule && `${d.decision.rule.file}:${d.decision.rule.line}`),
      result: 'ok', lifetime, taps: nics,
    });
    return { v: 1, id: request.id, ok: true, nics };
  }

  /** Makes the waiting requests' taps, a batch at a time, until none is waiting. */
  async #makeWaiting(): Promise<void> {
    this.#making = true;
    try {
      while (this.#waiting.length > 0) await this.#makeBatch(this.#waiting.splice(0, MAX_BATCH));
    } finally {
      this.#making = false;
    }
  }

  /**
   * Count and create under one host-wide lock (other helper processes count the same taps):
   * each request in arrival order is within its user's max-taps counting those before it in
   * the batch, or refused with QUOTA; the rest are made together.
   */
  async #makeBatch(batch: Waiting[]): Promise<void> {
    let release: (() => void) | undefined;
    try {
      release = await this.#deps.lock();
      const counts = new Map(this.#deps.net.tapCounts(this.#removing));
      const accepted: Waiting[] = [];
      for (const w of batch) {
        const held = counts.get(w.caller.uid) ?? 0;
        if (held + w.request.bridges.length > w.limit) {
          w.reject(new ProtocolError(ErrorCode.Quota, `${w.caller.user.name} holds ${held} tap(s); ${w.request.bridges.length} more would exceed max-taps ${w.limit}`));
          continue;
        }
        counts.set(w.caller.uid, held + w.request.bridges.length);
        accepted.push(w);
      }
      if (accepted.length === 0) return;
      const outcomes = await this.#deps.net.createTaps(accepted.map((w) => ({
        bridges: w.request.bridges,
        owner: { uid: w.caller.uid, gid: w.caller.gid },
        ...(w.lifetime === 'session' ? { session: w.session.id } : {}),
      })), this.#deps.policy.ovsdbOption());
      for (const [i, w] of accepted.entries()) {
        const outcome = outcomes[i];
        if (outcome === undefined) w.reject(new Error('the network layer gave no outcome for a request'));
        else if ('error' in outcome) w.reject(outcome.error);
        else w.resolve(outcome.nics);
      }
    } catch (error) {
      // Settled requests ignore this.
      for (const w of batch) w.reject(error);
    } finally {
      release?.();
    }
  }

  async #ovsCleanup(request: OvsCleanupRequest, caller: Caller): Promise<Reply> {
    this.#policy();
    const { removed, refused } = await this.#deps.net.ovsCleanup(request.ports, { uid: caller.uid }, this.#deps.policy.ovsdbOption());
    if (removed.length === 0 && refused.length > 0) {
      // handle() audits the error reply.
      const first = refused[0]!;
      throw new ProtocolError(first.code === 'NO_SUCH_PORT' ? ErrorCode.NoSuchPort : ErrorCode.NotOwner,
        refused.map((r) => `${r.bridge}:${r.tap}: ${r.message}`).join('; '));
    }
    this.#deps.audit.write({
      event: 'request', op: 'ovs-cleanup', caller: { uid: caller.uid, user: caller.user.name, pid: caller.pid, transport: caller.transport },
      request: summary(request), result: 'ok', removed, refused,
    });
    return { v: 1, id: request.id, ok: true, removed };
  }

  #record(session: Session, caller: Caller): void {
    this.#deps.store.write({
      version: 1, id: session.id, uid: caller.uid,
      client: { pid: caller.pid, start: caller.start.toString() },
      helper: this.#deps.helper,
      nics: session.nics,
    });
  }

  /** Delete `nics` (only if `owner` owns them) and audit the outcome; true when they are gone. */
  async #remove(nics: Nic[], owner: Caller, audit: Record<string, unknown> & { event: string }): Promise<boolean> {
    const taps = nics.map((n) => n.tap).filter((t) => !this.#removing.has(t));
    for (const t of taps) this.#removing.add(t);
    try {
      await this.#deps.net.deleteTaps(nics, { ...this.#deps.policy.ovsdbOption(), owner: owner.uid });
      this.#deps.audit.write({ ...audit, uid: owner.uid, user: owner.user.name, result: 'ok', taps: nics });
      return true;
    } catch (error) {
      this.#deps.audit.write({ ...audit, uid: owner.uid, user: owner.user.name, result: 'error', message: (error as Error).message, taps: nics });
      return false;
    } finally {
      for (const t of taps) this.#removing.delete(t);
    }
  }

  /** Remove taps made for a request whose reply could not be delivered. */
  async discard(nics: Nic[], caller: Caller, why: string): Promise<void> {
    await this.#remove(nics, caller, { event: 'undelivered', why });
  }

  /** The connection ended: remove the session's taps and ports, then its record. */
  async endSession(session: Session, caller: Caller | undefined, why: string): Promise<void> {
    // A session gets taps only after its caller was identified.
    if (session.nics.length === 0 || caller === undefined) return;
    const nics = session.nics.splice(0);
    if (!(await this.#remove(nics, caller, { event: 'session-end', session: session.id, why }))) return;
    try {
      this.#deps.store.remove(session.id);
    } catch (error) {
      // The taps are gone; a helper that starts after this one finds the record and its client gone.
      this.#deps.audit.write({ event: 'session-record', session: session.id, uid: caller.uid, result: 'error', message: `cannot remove the session record: ${(error as Error).message}` });
    }
  }
}

function summary(request: Request): Record<string, unknown> {
  return request.op === 'make-nics'
    ? { id: request.id, bridges: request.bridges, lifetime: request.lifetime ?? 'session' }
    : { id: request.id, ports: request.ports };
}
