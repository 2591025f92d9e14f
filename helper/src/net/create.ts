import { resolveDeps, type NetDeps } from './deps.js';
import { NetError } from './errors.js';
import { HeldFds } from './fdtaps.js';
import { classifyBridges, missingBridges } from './kinds.js';
import { ifindexOf } from './ifindex.js';
import { ipBatch } from './ipbatch.js';
import { createLinuxTaps, deleteOwnTaps, type BeforeCreate, type CreatedTap, type TapJob, type TapJobResult } from './linuxtaps.js';
import { lockError, lockLinuxPorts, type LockFailure, type PortLock } from './maclock.js';
import { addLockFlows, delLockFlows } from './ovsflows.js';
import { addPorts, delCheckedPorts } from './ovsports.js';
import { errorText } from './runner.js';
import { mtuOf } from './sysfs.js';
import type { MadeNic, Nic, NetOptions, TapOwner } from './types.js';
import { checkId, checkIfname, checkList, checkMac, checkOvsdb, checkSession } from './validate.js';
import { checkVlans, makeLinuxAccessPorts, vlanBridges, vlanRefusal, type VlanFiltering } from './vlan.js';

/** The most queues a tap may have (the design's ceiling for `max-queues`). */
const MAX_QUEUES = 16;

/** One request: a tap per bridge for one owner, its OVS ports tagged with `session` if given. */
export interface CreateJob {
  readonly bridges: readonly string[];
  readonly owner: TapOwner;
  readonly session?: string | undefined;
  /**
   * Queues per tap, in the order of `bridges` (1..MAX_QUEUES; all 1 when absent). More than 1
   * makes a `multi_queue` tap (what qemu's `-netdev tap,queues=N` needs). Policy limits
   * (`max-queues`) are the caller's business; this layer checks only the range.
   */
  readonly queues?: readonly number[] | undefined;
  /**
   * The VLAN each tap is an access port of, in the order of `bridges` (1..4094; none when
   * undefined or absent): the policy's `vlan`, never the user's choice. See vlan.ts for how, and
   * for what is refused (SYSTEM_ERROR, before anything is made) where the host cannot do it.
   */
  readonly vlans?: readonly (number | undefined)[] | undefined;
  /**
   * The MAC each tap is locked to, in the order of `bridges` (undefined: not locked; all unlocked
   * when absent): only frames from that source MAC get from the tap into the bridge (Linux bridge:
   * maclock.ts; Open vSwitch: ovsflows.ts). Whether a tap is locked is the caller's policy.
   */
  readonly macs?: readonly (string | undefined)[] | undefined;
  /**
   * Fd handoff: each tap is opened by the helper (one fd a queue, not persistent: it lives as
   * long as one of its fds is open) instead of made persistent by `tuntap add`; attached, MTU,
   * VLAN and MAC lock as any other. The outcome carries the fds, which the caller must close.
   */
  readonly fd?: boolean | undefined;
}

/**
 * A request's nics (in the order of its bridges) with each tap's interface index (read from /sys
 * right after the batch that made it; undefined if it was already gone), or why it failed: then
 * nothing of it is left but the taps in `left`, which could not be removed (normally none).
 */
export type CreateOutcome =
  | { readonly nics: MadeNic[]; readonly ifindexes: readonly (number | undefined)[]; readonly fds?: readonly (readonly number[])[] }
  | { readonly error: NetError; readonly left?: readonly CreatedTap[] };

export interface CreateOptions extends NetOptions {
  /** See BeforeCreate (linuxtaps.ts): `job` is the request's index in `jobs`. */
  readonly beforeCreate?: BeforeCreate | undefined;
}

/** A request as checked: every field present and well-formed (no default stands in for a missing uid). */
interface CheckedJob {
  readonly bridges: readonly string[];
  readonly uid: number;
  readonly session: string | undefined;
  readonly queues: readonly number[];
  readonly vlans: readonly (number | undefined)[];
  readonly macs: readonly (string | undefined)[];
  readonly fd: boolean;
}

/** A job's checked bridges, uid, session tag and queues; NetError (BAD_NAME, BAD_REQUEST) if any is malformed. */
function checkJob(job: CreateJob): CheckedJob {
  const bridges = checkList(job.bridges, 'bridges');
  for (const b of bridges) checkIfname(b, 'bridge');
  const uid = checkId(job.owner.uid, 'uid');
  if (job.owner.gid !== undefined) checkId(job.owner.gid, 'gid');
  const session = job.session === undefined ? undefined : checkSession(job.session);
  return {
    bridges, uid, session, queues: checkQueues(job.queues, bridges.length),
    vlans: checkVlans(job.vlans, bridges.length), macs: checkMacs(job.macs, bridges.length), fd: job.fd === true,
  };
}

/** One MAC (or undefined) a bridge; BAD_REQUEST otherwise. */
function checkMacs(macs: unknown, count: number): (string | undefined)[] {
  if (macs === undefined) return Array.from({ length: count }, () => undefined);
  if (!Array.isArray(macs) || macs.length !== count) {
    throw new NetError('BAD_REQUEST', `macs: expected a list of ${count} (one a bridge)`);
  }
  return macs.map((m: unknown) => (m === undefined ? undefined : checkMac(m, 'mac')));
}

/** One queue count a bridge, each an integer 1..MAX_QUEUES; BAD_REQUEST otherwise. */
function checkQueues(queues: unknown, count: number): number[] {
  if (queues === undefined) return Array.from({ length: count }, () => 1);
  if (!Array.isArray(queues) || queues.length !== count) {
    throw new NetError('BAD_REQUEST', `queues: expected a list of ${count} (one a bridge)`);
  }
  return queues.map((q: unknown) => {
    if (typeof q !== 'number' || !Number.isInteger(q) || q < 1 || q > MAX_QUEUES) {
      throw new NetError('BAD_REQUEST', `queues: each must be an integer from 1 to ${MAX_QUEUES}, not ${typeof q === 'number' ? q : typeof q}`);
    }
    return q;
  });
}

/**
 * Several requests at once (the helper gathers those that arrive together), all the Linux side
 * in one ip batch. Each outcome is that request's alone: one tap per bridge (same order as its
 * `bridges`), owned by owner.uid (no group: see TapOwner), up, attached to its bridge; or, all or
 * nothing, an error after the taps and ports made for it were removed. A device it did not create
 * is never deleted or re-owned.
 *
 * Programs: one ip batch (written to the helper's long-lived ip: no new process); plus one
 * `ovs-vsctl list-br` if a bridge is not a Linux bridge; plus one `ovs-vsctl` a request adding
 * its OVS ports. (More only after a name collision or a failure.)
 */
export async function createTapsMany(jobs: readonly CreateJob[], opts: CreateOptions = {}): Promise<CreateOutcome[]> {
  if (!Array.isArray(jobs)) throw new NetError('BAD_REQUEST', 'requests: expected a list');
  const ovsdb = checkOvsdb(opts.ovsdb);
  const deps = resolveDeps(opts.deps);
  // Fd taps' fds until they go out with their outcomes; whatever is left (a request that failed,
  // an exception) is closed, which removes those taps.
  const held = new HeldFds();
  try {
    return await createWithFds(jobs, opts, ovsdb, deps, held);
  } finally {
    held.closeAll();
  }
}

async function createWithFds(jobs: readonly CreateJob[], opts: CreateOptions, ovsdb: string | undefined, deps: NetDeps, held: HeldFds): Promise<CreateOutcome[]> {
  const outcomes: (CreateOutcome | undefined)[] = jobs.map(() => undefined);
  const checked = jobs.map((job, i) => {
    try {
      return checkJob(job);
    } catch (error) {
      if (!(error instanceof NetError)) throw error;
      outcomes[i] = { error };
      return undefined;
    }
  });

  const classes = await classifyBridges([...new Set(checked.flatMap((c) => c?.bridges ?? []))], opts);
  const vlanHost = await vlanBridges(checked.flatMap((c) => c ?? []), classes, ovsdb, deps.run);
  /** The requests whose taps are to be made, with their place in `jobs`. */
  const going: { readonly i: number; readonly job: CheckedJob }[] = [];
  for (const [i, job] of checked.entries()) {
    if (job === undefined) continue;
    const missing = missingBridges(job.bridges, classes) ?? vlanRefusal(job.bridges, job.vlans, vlanHost);
    if (missing !== undefined) outcomes[i] = { error: missing };
    else if (job.bridges.length === 0) outcomes[i] = { nics: [], ifindexes: [] };
    else going.push({ i, job });
  }

  // A tap that becomes a VLAN access port on a Linux bridge, or is mac-locked, is attached down
  // (a down port forwards nothing) and raised once configured: no frame gets past before.
  const tapJobs: TapJob[] = going.map(({ job }) => ({
    bridges: job.bridges, uid: job.uid, queues: job.queues, fd: job.fd,
    held: job.bridges.map((b, slot) => job.macs[slot] !== undefined || (job.vlans[slot] !== undefined && classes.kinds.get(b) === 'linux')),
  }));
  const before = opts.beforeCreate;
  const made = await createLinuxTaps(tapJobs, classes, deps,
    before === undefined ? undefined : (taps) => before(taps.map((t) => ({ ...t, job: going[t.job]?.i ?? -1 }))), held);
  const unlocked = await lockLinux(going.map(({ job }) => job), made, classes.kinds, deps);
  // The OVS side, a transaction a request, all at once (ovsdb orders them).
  await Promise.all(going.map(async ({ i, job }, k) => {
    const result = made[k];
    if (result !== undefined && !('error' in result) && result.taps.some((t) => unlocked.has(t))) {
      // A tap that could not be locked is never handed out: the request's taps go.
      const error = lockError(unlocked, result.taps);
      const left = await deleteOwnTaps(result.taps, deps, held);
      outcomes[i] = left.length === 0 ? { error }
        : { error: new NetError('SYSTEM_ERROR', `${error.message}; could not remove ${left.join(', ')}`), left: left.map((tap) => ({ tap, ifindex: ifindexOf(tap) })) };
    } else if (result === undefined) {
      outcomes[i] = { error: new NetError('SYSTEM_ERROR', 'internal error: no result for a request') };
    } else if ('error' in result) {
      outcomes[i] = result;
    } else {
      const nics: PlannedNic[] = job.bridges.map((bridge, b) => {
        const vlan = job.vlans[b];
        return { bridge, tap: result.taps[b] ?? '', type: classes.kinds.get(bridge) === 'ovs' ? 'ovs' : 'brctl', ...(vlan === undefined ? {} : { vlan }) };
      });
      const outcome = await finish(nics, result.taps, result.ifindexes,
        { uid: job.uid, session: job.session, mtus: classes.mtus, filtering: classes.filtering, ovsVlans: vlanHost.ovsVlans, macs: job.macs }, ovsdb, deps, held);
      outcomes[i] = 'error' in outcome || !job.fd ? outcome : { ...outcome, fds: result.taps.map((t) => held.take(t) ?? []) };
    }
  }));
  return outcomes.map((o) => o ?? { error: new NetError('SYSTEM_ERROR', 'internal error: no outcome for a request') });
}

/** A nic about to be finished: its VLAN, if the request gives it one. */
interface PlannedNic extends Nic {
  readonly vlan?: number;
}

/**
 * Locks the mac-locked taps on Linux bridges of the requests made (one bridge(8) run for all of
 * them: maclock.ts); returns those that are not locked, with why.
 */
async function lockLinux(jobs: readonly CheckedJob[], made: readonly (TapJobResult | undefined)[],
  kinds: ReadonlyMap<string, string>, deps: NetDeps): Promise<Map<string, LockFailure>> {
  const locks: PortLock[] = [];
  for (const [k, job] of jobs.entries()) {
    const result = made[k];
    if (result === undefined || 'error' in result) continue;
    for (const [b, bridge] of job.bridges.entries()) {
      const mac = job.macs[b];
      const tap = result.taps[b];
      if (mac !== undefined && tap !== undefined && kinds.get(bridge) !== 'ovs') locks.push({ bridge, tap, mac });
    }
  }
  return lockLinuxPorts(deps.run, locks);
}

/**
 * Who a request's ports are for, what each bridge was when checked (MTU, VLAN filtering, OVS
 * VLAN), and each tap's MAC lock.
 */
interface Finishing {
  readonly uid: number;
  readonly session: string | undefined;
  readonly mtus: ReadonlyMap<string, number>;
  readonly filtering: ReadonlyMap<string, VlanFiltering>;
  readonly ovsVlans: ReadonlyMap<string, number>;
  readonly macs: readonly (string | undefined)[];
}

/**
 * Makes a request's taps on Linux bridges VLAN access ports where it asks (vlan.ts: one `bridge`
 * batch, then the taps raised), adds its OVS ports (each Interface with `mtu_request` = its
 * bridge's MTU, so that OVS keeps the MTU the batch gave the tap; `tag=VID` for a VLAN, except on
 * a fake bridge, whose VLAN it already is) and the lock flows of its mac-locked OVS ports
 * (ovsflows.ts), raises the taps held down until then, then reads each tap's MTU back from /sys:
 * a tap without its bridge's MTU fails the request. On failure removes the ports, flows and the
 * request's taps (all or nothing).
 */
async function finish(nics: PlannedNic[], taps: readonly string[], ifindexes: readonly (number | undefined)[],
  { uid, session, mtus, filtering, ovsVlans, macs }: Finishing, ovsdb: string | undefined, deps: NetDeps, held: HeldFds): Promise<CreateOutcome> {
  const ovsPorts = nics.filter((n) => n.type === 'ovs');
  const flowLocks = nics.flatMap((n, b) => {
    const mac = macs[b];
    return n.type === 'ovs' && mac !== undefined ? [{ bridge: n.bridge, tap: n.tap, mac }] : [];
  });
  try {
    await makeLinuxAccessPorts(nics, filtering, deps);
    await addPorts(deps.run, ovsdb, ovsPorts.map(({ bridge, tap, vlan }) => ({
      bridge, tap, mtu: mtus.get(bridge), tag: vlan !== undefined && (ovsVlans.get(bridge) ?? 0) === 0 ? vlan : undefined,
    })), uid, session);
    await addLockFlows(deps.run, ovsdb, flowLocks);
    // Linux VLAN ports were raised by makeLinuxAccessPorts (their locks were made before it).
    await bringUp(taps.filter((_, b) => macs[b] !== undefined && !(nics[b]?.type === 'brctl' && nics[b]?.vlan !== undefined)), deps);
    return { nics: nics.map((nic) => ({ ...nic, mtu: tapMtu(nic, mtus.get(nic.bridge)) })), ifindexes };
  } catch (e) {
    const problems: string[] = [];
    try {
      // A failed transaction commits nothing; one that timed out waiting for ovs-vswitchd did.
      // Remove what is there under our names, on our bridges, with our tag.
      await delCheckedPorts(deps.run, ovsdb, ovsPorts.map(({ bridge, tap }) => ({ bridge, tap })), uid);
    } catch (inner) {
      problems.push(`removing the ports failed: ${(inner as Error).message}`);
    }
    try {
      await delLockFlows(deps.run, ovsdb, flowLocks);
    } catch (inner) {
      problems.push((inner as Error).message);
    }
    const left = await deleteOwnTaps(taps, deps, held);
    if (left.length > 0) problems.push(`could not remove ${left.join(', ')}`);
    const error = e instanceof NetError ? e : new NetError('SYSTEM_ERROR', String(e), { cause: e });
    if (problems.length === 0) return { error };
    const stuck = left.map((tap) => ({ tap, ifindex: ifindexOf(tap) }));
    return { error: new NetError(error.code, `${error.message}; ${problems.join('; ')}`, { cause: e }), left: stuck };
  }
}

/** Brings up the taps held down until they were locked; SYSTEM_ERROR if ip fails. */
async function bringUp(taps: readonly string[], deps: NetDeps): Promise<void> {
  const r = await ipBatch(deps.batch, taps.map((t) => `link set dev ${t} up`));
  if (!r.ok) throw new NetError('SYSTEM_ERROR', `bringing up the held-down tap(s) ${taps.join(', ')} failed: ${errorText(r.stderr)}`);
}

/**
 * The MTU `nic`'s tap has now, which must be `wanted` (its bridge's) when that is known. A tap
 * already gone (the ledger's business, as for its ifindex) is reported with its bridge's MTU.
 */
function tapMtu(nic: Nic, wanted: number | undefined): number {
  const mtu = mtuOf(nic.tap);
  if (mtu !== undefined && (wanted === undefined || mtu === wanted)) return mtu;
  if (mtu === undefined && wanted !== undefined) return wanted;
  throw new NetError('SYSTEM_ERROR', mtu === undefined
    ? `tap ${nic.tap} for bridge ${nic.bridge} disappeared before its MTU could be read`
    : `tap ${nic.tap} has MTU ${mtu}, not its bridge ${nic.bridge}'s ${String(wanted)}`);
}
