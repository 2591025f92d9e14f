import { resolveDeps } from './deps.js';
import { OWNER_KEY, readPorts } from './ovsstate.js';
import { ovsInstalled } from './tools.js';
import type { NetOptions, PortRef } from './types.js';
import { checkOvsdb, checkSession } from './validate.js';

export interface SessionPort extends PortRef {
  /** The uid in `external_ids:xkvm-owner`, when it is a number. */
  readonly owner?: number;
}

/**
 * The OVS ports tagged `external_ids:xkvm-session=SESSION` (for a restarted helper reaping a dead
 * client's session), in one ovs-vsctl run. Empty when Open vSwitch is not installed.
 */
export async function listSessionPorts(session: string, opts: NetOptions = {}): Promise<SessionPort[]> {
  const tag = checkSession(session);
  const ovsdb = checkOvsdb(opts.ovsdb);
  const { run } = resolveDeps(opts.deps);
  if (!ovsInstalled()) return [];
  const state = await readPorts(run, ovsdb, { session: tag });
  const out: SessionPort[] = [];
  for (const port of state.values()) {
    if (port.bridge === undefined) continue;
    const owner = port.externalIds.get(OWNER_KEY);
    out.push({
      bridge: port.bridge,
      tap: port.name,
      ...(owner !== undefined && /^[0-9]{1,10}$/.test(owner) ? { owner: Number(owner) } : {}),
    });
  }
  return out;
}
