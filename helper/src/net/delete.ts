import { resolveDeps } from './deps.js';
import { NetError } from './errors.js';
import { deleteOwnTaps } from './linuxtaps.js';
import { delCheckedPorts, delPorts } from './ovsports.js';
import { tapInfo } from './sysfs.js';
import { ovsInstalled } from './tools.js';
import type { Nic, NetOptions } from './types.js';
import { checkId, checkOvsdb, checkPorts } from './validate.js';

export interface DeleteOptions extends NetOptions {
  /**
   * When set, a tap whose owner is not this uid, and an OVS port not tagged with it, are left
   * alone (reported in `skipped`); this costs one more ovs-vsctl run (read before removing).
   */
  readonly owner?: number | undefined;
}

export interface DeleteResult {
  /** Taps deleted now. */
  readonly deleted: string[];
  /** Taps that were already gone (fine: deleting is idempotent). */
  readonly gone: string[];
  /** Taps and ports left alone, and why. */
  readonly skipped: { readonly tap: string; readonly reason: string }[];
}

/**
 * Removes the OVS ports of `nics` (one ovs-vsctl, `--if-exists del-port BRIDGE TAP`), then the
 * taps (one ip batch with -force, so one missing tap does not stop the rest). Idempotent. Only
 * tun/tap devices are deleted (with `owner`, only that uid's). A port found on another bridge
 * than the one named is left alone. Does everything it can, then throws SYSTEM_ERROR if some of
 * it failed (a port that could not be removed does not keep its tap alive).
 */
export async function deleteTaps(nics: readonly Nic[], opts: DeleteOptions = {}): Promise<DeleteResult> {
  checkPorts(nics, 'nics');
  for (const n of nics) {
    if (n.type !== 'ovs' && n.type !== 'brctl') throw new NetError('BAD_REQUEST', `bad nic type ${String(n.type)}`);
  }
  const owner = opts.owner === undefined ? undefined : checkId(opts.owner, 'uid');
  const ovsdb = checkOvsdb(opts.ovsdb);
  const deps = resolveDeps(opts.deps);
  const { run } = deps;
  const problems: string[] = [];
  const skipped: { tap: string; reason: string }[] = [];

  const ports = nics.filter((n) => n.type === 'ovs');
  if (ports.length > 0 && !ovsInstalled()) problems.push('Open vSwitch ports: ovs-vsctl is not installed');
  else if (ports.length > 0) {
    try {
      // Quick path, one ovs-vsctl; the checked path (read, then remove) with an owner or when
      // a port is not where the nic says (that fails the quick transaction as a whole).
      const quick = owner === undefined ? await delPorts(run, ovsdb, ports) : { ok: false };
      if (!quick.ok) skipped.push(...(await delCheckedPorts(run, ovsdb, ports, owner)).skipped);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }

  const deleted: string[] = [];
  const gone: string[] = [];
  for (const tap of new Set(nics.map((n) => n.tap))) {
    const info = tapInfo(tap);
    if (!info.exists) gone.push(tap);
    else if (!info.isTap) skipped.push({ tap, reason: 'not a tap device' });
    else if (owner !== undefined && info.owner !== owner) skipped.push({ tap, reason: `not owned by uid ${owner}` });
    else deleted.push(tap);
  }
  const left = await deleteOwnTaps(deleted, deps);
  if (left.length > 0) problems.push(`could not delete ${left.join(', ')}`);
  if (problems.length > 0) throw new NetError('SYSTEM_ERROR', `deleting taps: ${problems.join('; ')}`);
  return { deleted: deleted.filter((t) => !left.includes(t)), gone, skipped };
}
