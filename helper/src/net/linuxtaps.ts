import { isValidIfname } from '../../../shared/src/protocol/names.js';
import type { NetDeps } from './deps.js';
import { NetError } from './errors.js';
import { HeldFds } from './fdtaps.js';
import { deleteDevices } from './groupdelete.js';
import { ipBatch, type BatchOutcome } from './ipbatch.js';
import { ifindexOf } from './ifindex.js';
import { linuxBridgeIndex, type BridgeClasses } from './kinds.js';
import { errorText } from './runner.js';
import { isLinuxBridge, masterIndexOf, tapInfo } from './sysfs.js';
import type { BridgeKind } from './types.js';

/** How many name collisions (EBUSY) one request tolerates before giving up. */
const MAX_COLLISIONS = 16;
const BUSY = /Device or resource busy/;

/** One request's taps: one per bridge, owned by uid (no group), each with the queues asked (by slot; 1 if absent). */
export interface TapJob {
  readonly bridges: readonly string[];
  readonly uid: number;
  /** Checked by the caller (1..MAX_QUEUES); more than 1 makes a `multi_queue` tap. */
  readonly queues?: readonly number[] | undefined;
  /**
   * Taps (by slot) left down, attached but forwarding nothing, for the caller to bring up once it
   * has locked them (mac-lock): none when absent.
   */
  readonly held?: readonly boolean[] | undefined;
  /**
   * Fd handoff: the taps are opened by the helper (deps.openTap: not persistent, one fd a queue)
   * instead of `tuntap add`, and their fds kept in the call's HeldFds; the rest is the same.
   */
  readonly fd?: boolean | undefined;
}

/** A tap a request created, and its interface index (undefined: it was gone when looked at). */
export interface CreatedTap {
  readonly tap: string;
  readonly ifindex: number | undefined;
}

/**
 * A request's tap names (in the order of its bridges) and their interface indexes, read from
 * /sys right after the batch that made them; or why it failed, with the taps it created that
 * could not be removed (`left`, normally none).
 */
export type TapJobResult =
  | { readonly taps: string[]; readonly ifindexes: (number | undefined)[] }
  | { readonly error: NetError; readonly left: CreatedTap[] };

/** A tap about to be created: request `job` (its index), its `slot`-th bridge, under name `tap`. */
export interface PlannedTap {
  readonly job: number;
  readonly slot: number;
  readonly bridge: string;
  readonly kind: BridgeKind;
  readonly tap: string;
}

/**
 * Called with the taps a batch is about to create, before it is written to ip (again, with the
 * new names, before a retry after a name collision). The helper records them as intents in its
 * ledger (records/ledger.ts) so that a crash in between leaves nothing it cannot find; if this
 * throws, that batch is not run.
 */
export type BeforeCreate = (taps: readonly PlannedTap[]) => void;

interface Tap {
  readonly bridge: string;
  /** More than 1: made `multi_queue`. */
  readonly queues: number;
  /** Brought up by the batch (false: held down for the caller). */
  readonly up: boolean;
  name: string;
  /** The tap exists and this request made it: the only kind of device it ever deletes. */
  created: boolean;
}

/** One request while its taps are made. */
interface Request {
  readonly job: TapJob;
  readonly taps: readonly Tap[];
  collisions: number;
  /** Set when the request fails; from then on it takes no part in batches. */
  error?: NetError;
}

/** Draws a fresh tap name; undefined when the generator gives nothing usable. */
type Names = () => string | undefined;

/** What making taps needs besides the requests. */
interface Context {
  readonly kinds: ReadonlyMap<string, BridgeKind>;
  /** Each Linux bridge's ifindex when it was checked: what its taps must be attached to. */
  readonly ifindexes: ReadonlyMap<string, number>;
  /** Each bridge's MTU when it was checked: what its taps are given (none given when absent). */
  readonly mtus: ReadonlyMap<string, number>;
  readonly deps: NetDeps;
  readonly names: Names;
  readonly jobs: readonly TapJob[];
  readonly beforeCreate: BeforeCreate | undefined;
  /** The fds of the fd taps opened so far (TapJob.fd). */
  readonly held: HeldFds;
  /** Run the batches in a new ip (one that has resolved no name yet). */
  readonly fresh: boolean;
}

interface Line {
  readonly text: string;
  readonly request: Request;
  readonly tap: Tap;
  readonly step: 'create' | 'bring up and attach' | 'attach' | 'bring up';
}

/**
 * Deletes taps this request created (with the other deletions waiting, in one group deletion: see
 * groupdelete.ts; a missing one does not stop the rest). An fd tap (in `held`) goes when its fds
 * are closed. Returns the names still present afterwards.
 */
export async function deleteOwnTaps(taps: readonly string[], deps: NetDeps, held?: HeldFds): Promise<string[]> {
  held?.close(taps);
  return deleteDevices(taps, deps);
}

/**
 * Creates the taps of several requests at once: each tap owned by its request's uid (no group),
 * up (unless TapJob.held), and (Linux bridges) attached, with one ip batch without -force for all of them (more only
 * after a name collision or a failure; see deps.ts for where it runs). Each request is all or
 * nothing on its own: when it fails, the taps it created are deleted, nothing else, and the
 * others go on.
 *
 * 1. Plan: a fresh name for every tap.
 * 2. Make them together (makeTogether): batches until every request is made or has failed. A
 *    failing batch line names its request; only a name collision is retried, with a new name.
 * 3. When ip failed without naming a line while several requests were in the batch, each of
 *    them is undone and made again on its own (makeAlone), so the failure is pinned on its own.
 * 4. Check where each tap on a Linux bridge ended (its master's ifindex, from /sys) against the
 *    bridge's ifindex when it was checked (`ifindexes`). A bridge renamed, and another made under
 *    its name, is another device; the batch tells ip which index each bridge must mean (an ip
 *    that resolved the name earlier is replaced: ipcoprocess.ts), so a tap can end elsewhere only
 *    when the bridge changed between the check and the batch. Such a request is undone and made
 *    again once, bridges read again, in a new ip (makeAgain); if it still ends elsewhere, it fails.
 * 5. Settle each request (settle): its tap names, or, when it failed, its error once the taps
 *    it created are deleted.
 */
export async function createLinuxTaps(jobs: readonly TapJob[], bridges: Pick<BridgeClasses, 'kinds' | 'ifindexes' | 'mtus'>,
  deps: NetDeps, beforeCreate?: BeforeCreate, held: HeldFds = new HeldFds()): Promise<TapJobResult[]> {
  const { kinds, ifindexes, mtus } = bridges;
  const context: Context = { kinds, ifindexes, mtus, deps, names: nameSource(deps), jobs, beforeCreate, held, fresh: false };
  const requests = jobs.map((job) => plan(job, context.names));
  for (const request of await makeTogether(requests, context)) {
    requests[requests.indexOf(request)] = await makeAlone(request, context);
  }
  for (const [i, request] of requests.entries()) {
    const wrong = request.error === undefined ? misattached(request, context) : [];
    if (wrong.length > 0) requests[i] = await makeAgain(request, wrong, context);
  }
  const results: TapJobResult[] = [];
  for (const request of requests) results.push(await settle(request, context));
  return results;
}

function plan(job: TapJob, names: Names): Request {
  const taps: Tap[] = [];
  for (const [slot, bridge] of job.bridges.entries()) {
    const name = names();
    if (name === undefined) return { job, taps, collisions: 0, error: noName() };
    taps.push({ bridge, queues: job.queues?.[slot] ?? 1, up: job.held?.[slot] !== true, name, created: false });
  }
  return { job, taps, collisions: 0 };
}

/**
 * Runs batches until every request is made or has failed. The batch puts every `tuntap add`
 * first, then one `link set … up [master BRIDGE]` a tap. Without -force ip stops at the first
 * failing line and says `Command failed -:N`: every add before line N made its tap, and line N
 * is its request's failure. `tuntap add` refuses an existing name (EBUSY): that name belonged to
 * someone else, and that tap alone tries another (the earlier `link set` lines run again; they
 * are idempotent). Returns the requests still going when ip failed without naming a line, if
 * there were several (whose failure it was is not known); they are marked failed.
 */
async function makeTogether(requests: readonly Request[], context: Context): Promise<Request[]> {
  const { deps, names } = context;
  for (;;) {
    const going = requests.filter((r) => r.error === undefined);
    const lines = batchLines(going, context);
    announce([...lines.filter((l) => l.step === 'create'), ...fdTapsToOpen(going)], context);
    // Fd taps are opened before the batch (it attaches them); a name taken or a failure there
    // changes what the batch is, so it is planned again.
    if (!openFdTaps(going, context)) continue;
    let outcome: BatchOutcome;
    try {
      outcome = await ipBatch(deps.batch, lines.map((l) => l.text), { devices: bridgeIndexes(going, context), fresh: context.fresh });
    } catch (e) {
      // ip stopped somewhere unknown (it timed out, or died): every request still going fails.
      settleUncertain(going);
      for (const r of going) r.error = new NetError('SYSTEM_ERROR', `ip did not complete: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      return [];
    }
    if (outcome.ok) {
      for (const l of lines) if (l.step === 'create') l.tap.created = true;
      return [];
    }

    const number = outcome.failedLines[0];
    const line = number === undefined ? undefined : lines[number - 1];
    if (number === undefined || line === undefined) {
      // No line named (ip rejected an argument while parsing it): which adds ran is read from /sys.
      settleUncertain(going);
      for (const r of going) r.error = new NetError('SYSTEM_ERROR', `ip failed: ${errorText(outcome.stderr)}`, { cause: outcome });
      return going.length > 1 ? going : [];
    }
    for (const l of lines.slice(0, number - 1)) if (l.step === 'create') l.tap.created = true;
    // Line N is its request's failure, unless it is a name collision with retries left.
    const { request, tap } = line;
    const collision = line.step === 'create' && BUSY.test(outcome.stderr);
    if (collision && request.collisions < MAX_COLLISIONS) {
      const name = names();
      if (name === undefined) request.error = noName();
      else tap.name = name;
      request.collisions += 1;
      continue;
    }
    request.error = lineFailure(line, outcome, collision);
  }
}

/** The fd taps of the requests going that are not opened yet. */
function fdTapsToOpen(going: readonly Request[]): { request: Request; tap: Tap }[] {
  return going.flatMap((request) => (request.job.fd === true ? request.taps.filter((t) => !t.created).map((tap) => ({ request, tap })) : []));
}

/**
 * Opens the fd taps not opened yet (TapJob.fd), their fds into `held`. A name that exists already
 * (BAD_NAME: IFF_TUN_EXCL) is a collision, retried under a new name as for `tuntap add`; any other
 * failure fails the request. False when something changed that way (the batch is planned again).
 */
function openFdTaps(going: readonly Request[], { deps, names, held }: Context): boolean {
  let same = true;
  for (const { request, tap } of fdTapsToOpen(going)) {
    if (request.error !== undefined) continue;
    try {
      const opened = deps.openTap(tap.name, tap.queues, request.job.uid);
      held.hold(opened.name, opened.fds);
      tap.created = true;
    } catch (error) {
      same = false;
      const collision = error instanceof NetError && error.code === 'BAD_NAME';
      if (collision && request.collisions < MAX_COLLISIONS) {
        const name = names();
        if (name === undefined) request.error = noName();
        else tap.name = name;
        request.collisions += 1;
      } else {
        request.error = collision
          ? new NetError('SYSTEM_ERROR', `could not create a tap for bridge ${tap.bridge}: still no free tap name after ${request.collisions} collisions`)
          : error instanceof NetError ? error : new NetError('SYSTEM_ERROR', `could not open a tap for bridge ${tap.bridge}: ${String(error)}`, { cause: error });
      }
    }
  }
  return same;
}

/** Tells beforeCreate which taps are about to be created (`tuntap add` lines, fd taps to open). */
function announce(creating: readonly { request: Request; tap: Tap }[], { kinds, jobs, beforeCreate }: Context): void {
  if (beforeCreate === undefined) return;
  const taps = creating.map(({ request, tap }) => ({
    job: jobs.indexOf(request.job), slot: request.taps.indexOf(tap), bridge: tap.bridge, kind: kinds.get(tap.bridge) ?? 'linux', tap: tap.name,
  }));
  if (taps.length > 0) beforeCreate(taps);
}

function lineFailure({ request, tap, step }: Line, outcome: BatchOutcome, collision: boolean): NetError {
  const why = collision ? `still no free tap name after ${request.collisions} collisions` : errorText(outcome.stderr);
  const message = step === 'create'
    ? `could not create a tap for bridge ${tap.bridge}: ${why}`
    : `could not ${step} tap ${tap.name} for bridge ${tap.bridge}: ${why}`;
  return new NetError('SYSTEM_ERROR', message, { cause: outcome });
}

/**
 * Adds for the taps not made yet (`multi_queue` when more than one queue is asked), then a
 * `link set` for every tap of the requests going. That line gives the tap its bridge's MTU in the
 * same change that attaches it (the kernel sets the MTU before the master): a Linux bridge whose
 * MTU was not set explicitly follows its smallest port, so a tap attached at 1500 would pull it down.
 */
function batchLines(going: readonly Request[], { kinds, mtus }: Context): Line[] {
  const taps = going.flatMap((request) => request.taps.map((tap) => ({ request, tap })));
  return [
    ...taps.filter(({ request, tap }) => !tap.created && request.job.fd !== true).map(({ request, tap }) => ({
      text: `tuntap add dev ${tap.name} mode tap user ${request.job.uid}${tap.queues > 1 ? ' multi_queue' : ''}`, request, tap, step: 'create' as const,
    })),
    ...taps.map(({ request, tap }) => {
      const mtu = mtus.get(tap.bridge);
      const set = `link set dev ${tap.name}${mtu === undefined ? '' : ` mtu ${mtu}`}${tap.up ? ' up' : ''}`;
      return kinds.get(tap.bridge) === 'linux'
        ? { text: `${set} master ${tap.bridge}`, request, tap, step: tap.up ? 'bring up and attach' as const : 'attach' as const }
        : { text: set, request, tap, step: 'bring up' as const };
    }),
  ];
}

/**
 * Undoes a request whose batch failed somewhere ip did not say, and makes it again on its own
 * batch: what fails there is its own failure. If its taps cannot all be removed it stays failed
 * (settle tries once more).
 */
async function makeAlone(request: Request, context: Context): Promise<Request> {
  const left = await deleteOwnTaps(createdBy(request), context.deps, context.held);
  if (left.length > 0) {
    for (const tap of request.taps) tap.created = left.includes(tap.name);
    return request;
  }
  const alone = plan(request.job, context.names);
  // With one request in the batch every failure is its own: nothing comes back.
  await makeTogether([alone], context);
  return alone;
}

/** The checked ifindex of each Linux bridge the requests name (what `master NAME` must mean). */
function bridgeIndexes(going: readonly Request[], { kinds, ifindexes }: Context): Map<string, number> {
  const devices = new Map<string, number>();
  for (const bridge of going.flatMap((request) => request.job.bridges)) {
    const index = ifindexes.get(bridge);
    if (kinds.get(bridge) === 'linux' && index !== undefined) devices.set(bridge, index);
  }
  return devices;
}

/** The Linux bridges of a made request whose tap is attached to another device than the one checked. */
function misattached(request: Request, { kinds, ifindexes }: Context): string[] {
  const wrong = request.taps.filter((t) => kinds.get(t.bridge) === 'linux' && masterIndexOf(t.name) !== ifindexes.get(t.bridge));
  return [...new Set(wrong.map((t) => t.bridge))];
}

/**
 * A request a tap of which ended on another device than its bridge as checked (see step 4):
 * undone, its bridges read again, and made once more on its own in a new ip. If a tap still ends
 * elsewhere, the request fails (settle removes its taps).
 */
async function makeAgain(request: Request, wrong: readonly string[], context: Context): Promise<Request> {
  const moved = misattachedMessage(wrong);
  const left = await deleteOwnTaps(createdBy(request), context.deps, context.held);
  for (const tap of request.taps) tap.created = left.includes(tap.name);
  if (left.length > 0) {
    request.error = new NetError('SYSTEM_ERROR', moved);
    return request;
  }
  const ifindexes = new Map(context.ifindexes);
  for (const bridge of new Set(request.job.bridges)) {
    if (context.kinds.get(bridge) !== 'linux') continue;
    const index = linuxBridgeIndex(bridge);
    // settle says it disappeared
    if (index === undefined) {
      request.error = new NetError('NO_SUCH_BRIDGE', moved);
      return request;
    }
    ifindexes.set(bridge, index);
  }
  const again: Context = { ...context, ifindexes, fresh: true };
  const alone = plan(request.job, context.names);
  await makeTogether([alone], again);
  const still = alone.error === undefined ? misattached(alone, again) : [];
  if (still.length > 0) alone.error = new NetError('SYSTEM_ERROR', misattachedMessage(still));
  return alone;
}

function misattachedMessage(bridges: readonly string[]): string {
  const which = bridges.length === 1 ? `bridge ${bridges.join('')} was` : `bridges ${bridges.join(', ')} were`;
  return `${which} replaced by another device while a tap was being attached`;
}

/**
 * A made request's tap names and interface indexes; a failed one's error, once the taps it
 * created are deleted (with those that could not be).
 */
async function settle(request: Request, { kinds, deps, held }: Context): Promise<TapJobResult> {
  const { error } = request;
  if (error === undefined) return { taps: request.taps.map((t) => t.name), ifindexes: request.taps.map((t) => ifindexOf(t.name)) };
  const left = await deleteOwnTaps(createdBy(request), deps, held);
  const leak = left.length > 0 ? `; could not remove ${left.join(', ')}` : '';
  const gone = [...new Set(request.job.bridges)].filter((b) => kinds.get(b) === 'linux' && !isLinuxBridge(b));
  return {
    error: gone.length > 0
      ? new NetError('NO_SUCH_BRIDGE', `bridge ${gone.join(', ')} disappeared while its tap was being created${leak}`, { cause: error })
      : new NetError(error.code, `${error.message}${leak}`, { cause: error.cause }),
    left: left.map((tap) => ({ tap, ifindex: ifindexOf(tap) })),
  };
}

function createdBy(request: Request): string[] {
  return request.taps.filter((t) => t.created).map((t) => t.name);
}

/** Fresh tap names: valid, and none given twice in one call (a name found taken is not tried again). */
function nameSource(deps: NetDeps): Names {
  const given = new Set<string>();
  return () => {
    for (let i = 0; i < 100; i += 1) {
      const name = deps.tapName();
      if (isValidIfname(name) && !given.has(name)) {
        given.add(name);
        return name;
      }
    }
    return undefined;
  };
}

function noName(): NetError {
  return new NetError('SYSTEM_ERROR', 'the tap name generator gave no usable name');
}

/**
 * ip stopped somewhere unknown: a tap not known to be created is ours if it is a group-less tap of
 * its uid. (An fd tap is created exactly when it was opened, which is known.)
 */
function settleUncertain(going: readonly Request[]): void {
  for (const request of going) {
    for (const tap of request.taps) {
      if (tap.created || request.job.fd === true) continue;
      const info = tapInfo(tap.name);
      tap.created = info.isTap && info.owner === request.job.uid && info.group === undefined;
    }
  }
}
