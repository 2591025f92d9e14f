/**
 * Keeps one user from flooding the audit trail with refusals, without losing any of them.
 *
 * Every record of something that did not happen (a refused request, a connection closed or
 * refused by the helper, a failed identification) is charged to the uid it came from. Each uid
 * has a token bucket (20 records, refilled at 20 a second): within it, records are written as
 * they are. Beyond it they are only counted, by kind (event, op, code), and when the uid's
 * window closes (10 s after the first record it held back) one summary record a kind says how
 * many there were: `{"event":"audit-summary","uid":U,"kind":"request make-nics DENIED","count":N,
 * "seconds":T,"message":"N more refusals (request make-nics DENIED) from uid U in the last T s"}`.
 * Pending summaries are also written when the helper exits (flush). The throttle stands in front
 * of every sink (stderr/journal and the audit-log file alike).
 *
 * Never held back: records that name taps or say "ok" (what was created or removed is always on
 * record in full), records with no uid (helper start and exit, reaping), and root's records
 * (root could write to the log directly; the throttle protects users from each other).
 */
import type { AuditRecord } from './audit.js';

export interface ThrottleOptions {
  /** Where summaries go (the AuditLog's write: summaries themselves are never held back). */
  write: (record: AuditRecord) => void;
  /** Records a uid may write each second beyond its burst (default 20). */
  ratePerSecond?: number;
  /** Records a uid may write at once (default: the rate). */
  burst?: number;
  /** How long a uid's window of held-back records lasts before its summaries (default 10 s). */
  windowMs?: number;
  /** The clock, in ms (default Date.now). */
  now?: () => number;
  /** Run `fn` after `ms` without keeping the process alive (default: an unref'd setTimeout). */
  schedule?: (fn: () => void, ms: number) => void;
}

const DEFAULT_RATE = 20;
const DEFAULT_WINDOW_MS = 10_000;
/** Buckets kept beyond this many are dropped once full again (a full bucket is the default). */
const MAX_IDLE_BUCKETS = 1024;

/** The event of a summary record. */
const SUMMARY_EVENT = 'audit-summary';

interface Window {
  readonly start: number;
  /** Held-back records by kind, with the user name seen with them. */
  readonly kinds: Map<string, { count: number; user: string | undefined }>;
}

interface Bucket {
  tokens: number;
  last: number;
  window: Window | undefined;
}

function defaultSchedule(fn: () => void, ms: number): void {
  setTimeout(fn, ms).unref();
}

/** The uid a record is charged to, or undefined when it is never held back. */
function chargedUid(record: AuditRecord): number | undefined {
  if (record.event === SUMMARY_EVENT || record['result'] === 'ok') return undefined;
  for (const key of ['taps', 'removed'] as const) {
    const list = record[key];
    if (Array.isArray(list) && list.length > 0) return undefined;
  }
  const caller = record['caller'];
  const uid = typeof caller === 'object' && caller !== null ? Reflect.get(caller, 'uid') : record['uid'];
  return typeof uid === 'number' && Number.isInteger(uid) && uid > 0 ? uid : undefined;
}

function userOf(record: AuditRecord): string | undefined {
  const caller = record['caller'];
  const user = typeof caller === 'object' && caller !== null ? Reflect.get(caller, 'user') : record['user'];
  return typeof user === 'string' ? user : undefined;
}

/** What kind of record it is, for counting: "request make-nics DENIED", "connection closed idle"... */
function kindOf(record: AuditRecord): string {
  return [record.event, record['op'], record['result'], record['code'], record['reason']]
    .filter((part): part is string => typeof part === 'string' && part !== '')
    .join(' ');
}

export class AuditThrottle {
  readonly #write: (record: AuditRecord) => void;
  readonly #rate: number;
  readonly #burst: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #schedule: (fn: () => void, ms: number) => void;
  readonly #buckets = new Map<number, Bucket>();

  constructor(options: ThrottleOptions) {
    this.#write = options.write;
    this.#rate = options.ratePerSecond ?? DEFAULT_RATE;
    this.#burst = options.burst ?? this.#rate;
    this.#windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    this.#now = options.now ?? Date.now;
    this.#schedule = options.schedule ?? defaultSchedule;
  }

  /** True when `record` is held back (counted for a summary); false when it is to be written. */
  suppress(record: AuditRecord): boolean {
    const uid = chargedUid(record);
    if (uid === undefined) return false;
    const now = this.#now();
    let bucket = this.#buckets.get(uid);
    if (bucket === undefined) {
      this.#prune(now);
      bucket = { tokens: this.#burst, last: now, window: undefined };
      this.#buckets.set(uid, bucket);
    }
    bucket.tokens = Math.min(this.#burst, bucket.tokens + (Math.max(0, now - bucket.last) * this.#rate) / 1000);
    bucket.last = now;
    // A window past its end (its timer has not run yet, or the clock is a test's) closes first.
    if (bucket.window !== undefined && now - bucket.window.start >= this.#windowMs) this.#close(uid, bucket, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return false;
    }
    if (bucket.window === undefined) {
      bucket.window = { start: now, kinds: new Map() };
      const window = bucket.window;
      this.#schedule(() => {
        const current = this.#buckets.get(uid);
        if (current !== undefined && current.window === window) this.#close(uid, current, this.#now());
      }, this.#windowMs);
    }
    const kind = kindOf(record);
    const entry = bucket.window.kinds.get(kind);
    if (entry === undefined) bucket.window.kinds.set(kind, { count: 1, user: userOf(record) });
    else entry.count += 1;
    return true;
  }

  /** Write every pending summary now (the helper is exiting). */
  flush(): void {
    const now = this.#now();
    for (const [uid, bucket] of this.#buckets) this.#close(uid, bucket, now);
  }

  #close(uid: number, bucket: Bucket, now: number): void {
    const window = bucket.window;
    if (window === undefined) return;
    bucket.window = undefined;
    const seconds = Math.max(0, Math.round((now - window.start) / 100) / 10);
    for (const [kind, { count, user }] of window.kinds) {
      this.#write({
        event: SUMMARY_EVENT, uid, ...(user === undefined ? {} : { user }), kind, count, seconds,
        message: `${count} more refusal${count === 1 ? '' : 's'} (${kind}) from uid ${uid} in the last ${seconds} s`,
      });
    }
  }

  /** Forget buckets that are full again and hold nothing back, once there are many. */
  #prune(now: number): void {
    if (this.#buckets.size < MAX_IDLE_BUCKETS) return;
    for (const [uid, bucket] of this.#buckets) {
      const tokens = bucket.tokens + (Math.max(0, now - bucket.last) * this.#rate) / 1000;
      if (bucket.window === undefined && tokens >= this.#burst) this.#buckets.delete(uid);
    }
  }
}
