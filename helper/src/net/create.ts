import { resolveDeps } from './deps.js';
import { NetError } from './errors.js';
import { bridgeKinds } from './kinds.js';
import { createLinuxTaps, deleteOwnTaps } from './linuxtaps.js';
import { addPorts, delCheckedPorts } from './ovsports.js';
import type { Nic, NetOptions, TapOwner } from './types.js';
import { checkId, checkIfname, checkList, checkOvsdb, checkSession } from './validate.js';

export interface CreateOptions extends NetOptions {
  /** Tag for the OVS ports (`external_ids:xkvm-session`), so a restarted helper can find them. */
  readonly session?: string | undefined;
}

/**
 * One tap per bridge (same order as `bridges`), owned by owner.uid (no group: see TapOwner), up, attached to its
 * bridge. All or nothing: on any failure the taps and ports this call made are removed before it
 * throws; a device it did not create is never deleted or re-owned.
 *
 * Programs: one ip batch (written to the helper's long-lived ip: no new process); plus one
 * `ovs-vsctl list-br` if a bridge is not a Linux bridge; plus one `ovs-vsctl` adding every OVS
 * port. (More only after a name collision or a failure.)
 */
export async function createTaps(bridges: readonly string[], owner: TapOwner, opts: CreateOptions = {}): Promise<Nic[]> {
  checkList(bridges, 'bridges');
  for (const b of bridges) checkIfname(b, 'bridge');
  const uid = checkId(owner.uid, 'uid');
  if (owner.gid !== undefined) checkId(owner.gid, 'gid');
  const session = opts.session === undefined ? undefined : checkSession(opts.session);
  const ovsdb = checkOvsdb(opts.ovsdb);
  const deps = resolveDeps(opts.deps);
  if (bridges.length === 0) return [];

  const kinds = await bridgeKinds(bridges, opts);
  const taps = await createLinuxTaps(bridges, kinds, uid, deps);
  const nics: Nic[] = bridges.map((bridge, i) => ({
    bridge, tap: taps[i] ?? '', type: kinds.get(bridge) === 'ovs' ? 'ovs' : 'brctl',
  }));

  const ovsPorts = nics.filter((n) => n.type === 'ovs');
  try {
    await addPorts(deps.run, ovsdb, ovsPorts, uid, session);
  } catch (e) {
    const problems: string[] = [];
    try {
      // A failed transaction commits nothing; one that timed out waiting for ovs-vswitchd did.
      // Remove what is there under our names, on our bridges, with our tag.
      await delCheckedPorts(deps.run, ovsdb, ovsPorts, uid);
    } catch (inner) {
      problems.push(`removing the ports failed: ${(inner as Error).message}`);
    }
    const left = await deleteOwnTaps(taps, deps);
    if (left.length > 0) problems.push(`could not remove ${left.join(', ')}`);
    if (problems.length === 0) throw e;
    const message = e instanceof Error ? e.message : String(e);
    throw new NetError(e instanceof NetError ? e.code : 'SYSTEM_ERROR', `${message}; ${problems.join('; ')}`, { cause: e });
  }
  return nics;
}
