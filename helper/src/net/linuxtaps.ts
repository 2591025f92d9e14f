import { isValidIfname } from '../../../shared/src/protocol/names.js';
import type { NetDeps } from './deps.js';
import { NetError } from './errors.js';
import { ipBatch } from './ipbatch.js';
import { errorText } from './runner.js';
import { deviceExists, isLinuxBridge, tapInfo } from './sysfs.js';
import type { BridgeKind } from './types.js';

/** How many name collisions (EBUSY) one request tolerates before giving up. */
export const MAX_COLLISIONS = 16;
const BUSY = /Device or resource busy/;

/** One request's taps: one per bridge, owned by uid (no group). */
export interface TapJob {
  readonly bridges: readonly string[];
  readonly uid: number;
}

/** A request's tap names (in the order of its bridges), or why it failed (nothing of it left). */
export type TapJobResult = { readonly taps: string[] } | { readonly error: NetError };

interface Tap {
  readonly job: number;
  readonly bridge: string;
  readonly uid: number;
  name: string;
  /** The tap exists and is ours (this batch made it). */
  created: boolean;
}

interface Line {
  readonly text: string;
  readonly tap: Tap;
  readonly step: 'create' | 'bring up and attach' | 'bring up';
}

/**
 * Deletes taps this request created (one ip batch with -force: a missing one does not stop the
 * rest). Returns the names still present afterwards.
 */
export async function deleteOwnTaps(taps: readonly string[], deps: NetDeps): Promise<string[]> {
  if (taps.length === 0) return [];
  try {
    await ipBatch(deps.batch, taps.map((t) => `link del dev ${t}`), { force: true });
  } catch {
    // reported through what is left below
  }
  return taps.filter((t) => deviceExists(t));
}

/**
 * Creates the taps of several requests at once: each tap owned by its request's uid (no group),
 * up, and (Linux bridges) attached, with one ip batch without -force for all of them (more only
 * after a name collision or a failure; see deps.ts for where it runs). Each request is all or
 * nothing on its own: when one fails, the taps it created are deleted, nothing else, and the
 * others go on.
 *
 * The batch puts every `tuntap add` first, then one `link set … up [master BRIDGE]` a tap.
 * `tuntap add` refuses an existing name (EBUSY, reported as `Command failed -:N`), so taps
 * before line N exist and are ours and the name at line N belonged to someone else: retry it
 * with a fresh name. A failure on a `link set` line means every tap is ours; that line's request
 * fails, the others' `link set` lines run again (they are idempotent). A failure without a line
 * number leaves some adds uncertain: those are taken as ours only if they are group-less taps
 * owned by their uid (which it may delete anyway); then every request still going fails alone,
 * or, when there are several, each is retried on its own batch to find which one it was.
 */
export async function createLinuxTaps(jobs: readonly TapJob[], kinds: ReadonlyMap<string, BridgeKind>,
  deps: NetDeps): Promise<TapJobResult[]> {
  const taps: Tap[] = jobs.flatMap((job, j) => job.bridges.map((bridge) => ({ job: j, bridge, uid: job.uid, name: '', created: false })));
  for (const tap of taps) tap.name = freshName(deps, taps);
  const failed = new Map<number, NetError>();
  const collisions = jobs.map(() => 0);
  /** Requests that were run again on their own, and how that went. */
  const retried = new Map<number, TapJobResult>();
  const fail = (job: number, message: string, cause: unknown): void => {
    failed.set(job, new NetError('SYSTEM_ERROR', message, { cause }));
  };

  for (;;) {
    const live = taps.filter((t) => !failed.has(t.job));
    if (live.length === 0) break;
    const lines: Line[] = live.filter((t) => !t.created)
      .map((tap) => ({ text: `tuntap add dev ${tap.name} mode tap user ${tap.uid}`, tap, step: 'create' as const }));
    const adds = lines.length;
    for (const tap of live) {
      lines.push(kinds.get(tap.bridge) === 'linux'
        ? { text: `link set dev ${tap.name} up master ${tap.bridge}`, tap, step: 'bring up and attach' }
        : { text: `link set dev ${tap.name} up`, tap, step: 'bring up' });
    }

    let outcome;
    try {
      outcome = await ipBatch(deps.batch, lines.map((l) => l.text));
    } catch (e) {
      settleUncertain(live);
      for (const job of new Set(live.map((t) => t.job))) fail(job, `ip did not complete: ${e instanceof Error ? e.message : String(e)}`, e);
      break;
    }
    if (outcome.ok) break;

    const number = outcome.failedLines[0];
    const line = number === undefined ? undefined : lines[number - 1];
    if (line === undefined || number === undefined) {
      settleUncertain(live);
      const running = [...new Set(live.map((t) => t.job))];
      if (running.length === 1) {
        fail(running[0] ?? 0, `ip failed: ${errorText(outcome.stderr)}`, outcome);
        break;
      }
      // Which request it was is unknown: undo them all, then each alone on its own batch.
      for (const job of running) {
        const left = await deleteOwnTaps(taps.filter((t) => t.job === job && t.created).map((t) => t.name), deps);
        if (left.length > 0) {
          for (const t of taps) if (t.job === job) t.created = left.includes(t.name);
          fail(job, `ip failed: ${errorText(outcome.stderr)}`, outcome);
        } else {
          retried.set(job, (await createLinuxTaps([jobs[job] ?? { bridges: [], uid: 0 }], kinds, deps))[0] ?? { error: internal() });
        }
      }
      break;
    }
    if (number <= adds) {
      for (const l of lines.slice(0, number - 1)) l.tap.created = true;
      const { tap } = line;
      if (BUSY.test(outcome.stderr) && (collisions[tap.job] ?? 0) < MAX_COLLISIONS) {
        collisions[tap.job] = (collisions[tap.job] ?? 0) + 1;
        tap.name = freshName(deps, taps);
        continue;
      }
      const why = BUSY.test(outcome.stderr) ? `still no free tap name after ${collisions[tap.job] ?? 0} collisions` : errorText(outcome.stderr);
      fail(tap.job, `could not create a tap for bridge ${tap.bridge}: ${why}`, outcome);
      continue;
    }
    for (const t of live) t.created = true;
    fail(line.tap.job, `could not ${line.step} tap ${line.tap.name} for bridge ${line.tap.bridge}: ${errorText(outcome.stderr)}`, outcome);
  }

  // Roll back the requests that failed, each on its own: only the taps it created.
  const results: TapJobResult[] = [];
  for (const [j, job] of jobs.entries()) {
    const again = retried.get(j);
    if (again !== undefined) {
      results.push(again);
      continue;
    }
    const error = failed.get(j);
    const mine = taps.filter((t) => t.job === j);
    if (error === undefined) {
      results.push({ taps: mine.map((t) => t.name) });
      continue;
    }
    const left = await deleteOwnTaps(mine.filter((t) => t.created).map((t) => t.name), deps);
    const leak = left.length > 0 ? `; could not remove ${left.join(', ')}` : '';
    const gone = [...new Set(job.bridges)].filter((b) => kinds.get(b) === 'linux' && !isLinuxBridge(b));
    results.push({
      error: gone.length > 0
        ? new NetError('NO_SUCH_BRIDGE', `bridge ${gone.join(', ')} disappeared while its tap was being created${leak}`, { cause: error })
        : new NetError(error.code, `${error.message}${leak}`, { cause: error.cause }),
    });
  }
  return results;
}

function freshName(deps: NetDeps, taps: readonly Tap[]): string {
  for (let i = 0; i < 100; i += 1) {
    const name = deps.tapName();
    if (isValidIfname(name) && !taps.some((t) => t.name === name)) return name;
  }
  throw new NetError('SYSTEM_ERROR', 'the tap name generator gave no usable name');
}

/** ip stopped somewhere unknown: a tap not known to be created is ours if it is a group-less tap of its uid. */
function settleUncertain(live: readonly Tap[]): void {
  for (const tap of live) {
    if (tap.created) continue;
    const info = tapInfo(tap.name);
    tap.created = info.isTap && info.owner === tap.uid && info.group === undefined;
  }
}

function internal(): NetError {
  return new NetError('SYSTEM_ERROR', 'internal error: a request got no result');
}
