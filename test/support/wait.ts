/**
 * Waiting on conditions with deadlines instead of sleeping: `waitFor(predicate, deadlineMs)`
 * polls until the predicate returns a truthy value and resolves with it, or rejects at the
 * deadline saying what it waited for and what it saw last. It does not say how long it took:
 * tests do not measure time (test/bench does).
 *
 *   const { value: tap } = await waitFor(() => findTap(), PATIENCE_MS, { what: 'the tap' });
 */

/**
 * A deadline for something that will happen (a reply, a session's end): long, so that only a
 * hang hits it on a loaded machine. It is never a measure of speed (that is test/bench's job).
 */
export const PATIENCE_MS = 20_000;

export interface WaitOptions {
  /** What is awaited, for the error message. */
  readonly what?: string;
  /** Poll interval (default 20 ms). */
  readonly intervalMs?: number;
  /** What the world looked like at the deadline, for the error message. */
  readonly describe?: () => string;
  /** Start of the clock (default: now); the deadline counts from here. */
  readonly since?: number;
}

export interface Waited<T> {
  readonly value: T;
}

class WaitTimeout extends Error {
  override readonly name = 'WaitTimeout';
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves with the predicate's first truthy value. The predicate is always tried once more at
 * the deadline, so a slow poll cannot make a condition that holds in time look late. An exception
 * thrown by the predicate is kept as "the last state" and polling continues.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  deadlineMs: number,
  options: WaitOptions = {},
): Promise<Waited<NonNullable<T>>> {
  const since = options.since ?? Date.now();
  const end = since + deadlineMs;
  let last: unknown;
  for (;;) {
    const before = Date.now();
    try {
      const value = await predicate();
      if (value) return { value: value as NonNullable<T> };
      last = value;
    } catch (error) {
      last = error instanceof Error ? error.message : error;
    }
    if (before >= end) break;
    await pause(Math.max(0, Math.min(options.intervalMs ?? 20, end - Date.now())));
  }
  const seen = options.describe?.() ?? (last === undefined || last === false ? '' : `last: ${JSON.stringify(last)}`);
  throw new WaitTimeout(`timed out after ${deadlineMs} ms waiting for ${options.what ?? 'the condition'}${seen === '' ? '' : ` (${seen})`}`);
}

/** Rejects if `promise` has not settled within `deadlineMs`. */
export function within<T>(promise: Promise<T>, deadlineMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeout(`timed out after ${deadlineMs} ms waiting for ${what}`)), deadlineMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
