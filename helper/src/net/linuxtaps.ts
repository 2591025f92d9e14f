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

interface Line {
  readonly text: string;
  readonly index: number;
  readonly step: 'create' | 'bring up' | 'attach';
}

function freshName(deps: NetDeps, taken: readonly string[]): string {
  for (let i = 0; i < 100; i += 1) {
    const name = deps.tapName();
    if (isValidIfname(name) && !taken.includes(name)) return name;
  }
  throw new NetError('SYSTEM_ERROR', 'the tap name generator gave no usable name');
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
 * Creates one tap per bridge, owned by uid (no group), up, and (Linux bridges) attached, with one
 * ip batch without -force (more only after a name collision; see deps.ts for where it runs). All or nothing: on failure it deletes
 * the taps it created and nothing else, then throws.
 *
 * The batch puts every `tuntap add` first, then the `link set` lines. `tuntap add` refuses an
 * existing name (EBUSY, reported as `Command failed -:N`), so taps before line N are ours and
 * the name at line N belonged to someone else: retry it with a fresh name. A failure after the
 * adds means every tap is ours. A failure without a line number leaves some adds uncertain:
 * those are deleted only if they are group-less taps owned by this uid (which it may delete anyway).
 */
export async function createLinuxTaps(bridges: readonly string[], kinds: ReadonlyMap<string, BridgeKind>,
  uid: number, deps: NetDeps): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < bridges.length; i += 1) names.push(freshName(deps, names));
  let created = 0; // names[0, created) exist and are ours
  let collisions = 0;
  for (;;) {
    const lines: Line[] = [];
    for (let i = created; i < names.length; i += 1) {
      lines.push({ text: `tuntap add dev ${names[i]} mode tap user ${uid}`, index: i, step: 'create' });
    }
    const adds = lines.length;
    names.forEach((tap, i) => {
      lines.push({ text: `link set dev ${tap} up`, index: i, step: 'bring up' });
      const bridge = bridges[i] ?? '';
      if (kinds.get(bridge) === 'linux') lines.push({ text: `link set dev ${tap} master ${bridge}`, index: i, step: 'attach' });
    });

    let outcome;
    try {
      outcome = await ipBatch(deps.batch, lines.map((l) => l.text));
    } catch (e) {
      throw await failed(e, `ip did not complete: ${e instanceof Error ? e.message : String(e)}`, created, true);
    }
    if (outcome.ok) return names;

    const number = outcome.failedLines[0];
    const line = number === undefined ? undefined : lines[number - 1];
    if (line !== undefined && number !== undefined && number <= adds) {
      created = line.index;
      if (BUSY.test(outcome.stderr) && collisions < MAX_COLLISIONS) {
        collisions += 1;
        names[line.index] = freshName(deps, names);
        continue;
      }
      const why = BUSY.test(outcome.stderr) ? `still no free tap name after ${collisions} collisions` : errorText(outcome.stderr);
      throw await failed(outcome, `could not create a tap for bridge ${bridges[line.index] ?? '?'}: ${why}`, created, false);
    }
    if (line !== undefined) {
      created = names.length;
      throw await failed(outcome, `could not ${line.step} tap ${names[line.index] ?? '?'} for bridge ${bridges[line.index] ?? '?'}: `
        + errorText(outcome.stderr), created, false);
    }
    throw await failed(outcome, `ip failed: ${errorText(outcome.stderr)}`, created, true);
  }

  /**
   * Rolls back and builds the error (NO_SUCH_BRIDGE if a Linux bridge vanished meanwhile).
   * names[0, sure) are ours; with `unsure`, ip stopped somewhere unknown and the rest are checked.
   */
  async function failed(cause: unknown, message: string, sure: number, unsure: boolean): Promise<NetError> {
    const uncertain = !unsure ? [] : names.slice(sure).filter((t) => {
      const info = tapInfo(t);
      return info.isTap && info.owner === uid && info.group === undefined;
    });
    const left = await deleteOwnTaps([...names.slice(0, sure), ...uncertain], deps);
    const leak = left.length > 0 ? `; could not remove ${left.join(', ')}` : '';
    const gone = bridges.filter((b) => kinds.get(b) === 'linux' && !isLinuxBridge(b));
    if (gone.length > 0) {
      return new NetError('NO_SUCH_BRIDGE', `bridge ${gone.join(', ')} disappeared while its tap was being created${leak}`, { cause });
    }
    return new NetError('SYSTEM_ERROR', `${message}${leak}`, { cause });
  }
}
