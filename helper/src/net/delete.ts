import { resolveDeps } from './deps.js';
import { NetError } from './errors.js';
import { deleteDevices } from './groupdelete.js';
import { delLockFlows } from './ovsflows.js';
import { delCheckedPorts, delPorts } from './ovsports.js';
import { ifindexOf } from './ifindex.js';
import { tapInfo } from './sysfs.js';
import { ovsInstalled } from './tools.js';
import type { Nic, NetOptions } from './types.js';
import { checkId, checkOvsdb, checkPorts } from './validate.js';

export interface DeleteOptions extends NetOptions {
  /**
   * When set, a tap whose owner is not this uid, and an OVS port not tagged with it, are left
   * alone (and reported: see deleteTaps); this costs one more ovs-vsctl run (read before removing).
   */
  readonly owner?: number | undefined;
}

/** A tap to delete: its nic, and the ifindex it had when it was made, when that is known. */
export type DeleteNic = Nic & { readonly ifindex?: number | undefined };

export interface DeleteResult {
  /** Taps deleted now. */
  readonly deleted: string[];
  /**
   * Taps that were already gone (fine: deleting is idempotent), including a name that now
   * belongs to another device than the ifindex given.
   */
  readonly gone: string[];
}

/** What a failed deleteTaps did, the `cause` of its error. */
interface DeleteFailure extends DeleteResult {
  /** Taps (and taps' OVS ports) left in place or not deleted, and why. */
  readonly left: { readonly tap: string; readonly reason: string }[];
}

/**
 * Removes the OVS ports of `nics` (one ovs-vsctl, `--if-exists del-port BRIDGE TAP`; on an OVS
 * fake (VLAN) bridge too) and their mac-lock flows (ovsflows.ts: one ovs-vsctl, one ovs-ofctl a
 * bridge), then the taps, together with every other deletion waiting (one group
 * deletion: groupdelete.ts; a missing tap does not stop the rest). Idempotent. Only tun/tap
 * devices are deleted; with `owner`, only that uid's; with a nic's `ifindex`, only the device
 * that has it (a name now held by another device means that the tap is gone). A port found on
 * another bridge than the one named is left alone.
 *
 * Does everything it can, then throws SYSTEM_ERROR naming whatever it could not do or left in
 * place (a port that could not be removed does not keep its tap alive); the error's `cause` is a
 * DeleteFailure. It never reports success for something that is still there.
 */
export async function deleteTaps(nics: readonly DeleteNic[], opts: DeleteOptions = {}): Promise<DeleteResult> {
  checkPorts(nics, 'nics');
  for (const n of nics) {
    if (n.type !== 'ovs' && n.type !== 'brctl') throw new NetError('BAD_REQUEST', `bad nic type ${String(n.type)}`);
    if (n.ifindex !== undefined) checkId(n.ifindex, 'ifindex');
  }
  const owner = opts.owner === undefined ? undefined : checkId(opts.owner, 'uid');
  const ovsdb = checkOvsdb(opts.ovsdb);
  const deps = resolveDeps(opts.deps);
  const { run } = deps;
  const problems: string[] = [];
  const left: { tap: string; reason: string }[] = [];

  const ports = nics.filter((n) => n.type === 'ovs');
  if (ports.length > 0 && !ovsInstalled()) problems.push('Open vSwitch ports: ovs-vsctl is not installed');
  else if (ports.length > 0) {
    try {
      // Quick path, one ovs-vsctl; the checked path (read, then remove) with an owner or when
      // a port is not where the nic says (that fails the quick transaction as a whole).
      const quick = owner === undefined ? await delPorts(run, ovsdb, ports) : { ok: false };
      if (!quick.ok) {
        const { skipped } = await delCheckedPorts(run, ovsdb, ports, owner);
        left.push(...skipped.map((s) => ({ tap: s.tap, reason: `its Open vSwitch port was left in place (${s.reason})` })));
      }
    } catch (e) {
      problems.push((e as Error).message);
    }
    try {
      // The mac-lock flows of the ports (ovsflows.ts), which outlive them.
      await delLockFlows(run, ovsdb, ports.filter((p) => !left.some((l) => l.tap === p.tap)));
    } catch (e) {
      problems.push((e as Error).message);
    }
  }

  const doomed: string[] = [];
  const gone: string[] = [];
  const seen = new Set<string>();
  for (const nic of nics) {
    if (seen.has(nic.tap)) continue;
    seen.add(nic.tap);
    const info = tapInfo(nic.tap);
    if (!info.exists || (nic.ifindex !== undefined && ifindexOf(nic.tap) !== nic.ifindex)) gone.push(nic.tap);
    else if (!info.isTap) left.push({ tap: nic.tap, reason: 'left in place: it is not a tap device' });
    else if (owner !== undefined && info.owner !== owner) left.push({ tap: nic.tap, reason: `left in place: it is not owned by uid ${owner}` });
    else doomed.push(nic.tap);
  }
  const remaining = await deleteDevices(doomed, deps);
  const deleted = doomed.filter((t) => !remaining.includes(t));
  for (const tap of remaining) left.push({ tap, reason: 'could not be deleted' });
  if (problems.length > 0 || left.length > 0) {
    const what = [...problems, ...left.map((l) => `${l.tap}: ${l.reason}`)];
    const failure: DeleteFailure = { deleted, gone, left };
    throw new NetError('SYSTEM_ERROR', `deleting taps: ${what.join('; ')}`, { cause: failure });
  }
  return { deleted, gone };
}
