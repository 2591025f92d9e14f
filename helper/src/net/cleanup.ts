import { resolveDeps } from './deps.js';
import type { NetErrorCode } from './errors.js';
import { NetError } from './errors.js';
import { delLockFlows } from './ovsflows.js';
import { delPorts } from './ovsports.js';
import { OWNER_KEY, readPorts } from './ovsstate.js';
import { errorText } from './runner.js';
import { ovsInstalled } from './tools.js';
import type { NetOptions, PortRef } from './types.js';
import { checkId, checkOvsdb, checkPorts } from './validate.js';

interface RefusedPort extends PortRef {
  readonly code: Extract<NetErrorCode, 'NOT_OWNER' | 'NO_SUCH_PORT'>;
  readonly message: string;
}

export interface CleanupResult {
  readonly removed: PortRef[];
  readonly refused: RefusedPort[];
}

/**
 * `ovs-cleanup`: removes the OVS ports (not the taps, like the reference) whose
 * `external_ids:xkvm-owner` is the caller's uid and that are on the bridge named. Everything
 * else is refused (NOT_OWNER, NO_SUCH_PORT) and left alone. One ovs-vsctl reads the ports and
 * bridges, one more removes the allowed ports; then their mac-lock flows go (ovsflows.ts). Duplicates count once.
 */
export async function ovsCleanup(ports: readonly PortRef[], caller: { readonly uid: number },
  opts: NetOptions = {}): Promise<CleanupResult> {
  checkPorts(ports, 'ports');
  const uid = checkId(caller.uid, 'uid');
  const ovsdb = checkOvsdb(opts.ovsdb);
  const { run } = resolveDeps(opts.deps);

  const unique: PortRef[] = [];
  for (const p of ports) {
    if (!unique.some((u) => u.bridge === p.bridge && u.tap === p.tap)) unique.push({ bridge: p.bridge, tap: p.tap });
  }
  if (unique.length === 0) return { removed: [], refused: [] };
  if (!ovsInstalled()) {
    return {
      removed: [],
      refused: unique.map((p) => ({ ...p, code: 'NO_SUCH_PORT', message: `${p.tap}: Open vSwitch is not installed` })),
    };
  }

  const state = await readPorts(run, ovsdb, unique.map((p) => p.tap));
  const allowed: PortRef[] = [];
  const refused: RefusedPort[] = [];
  for (const p of unique) {
    const port = state.get(p.tap);
    const tag = port?.externalIds.get(OWNER_KEY);
    if (port === undefined) {
      refused.push({ ...p, code: 'NO_SUCH_PORT', message: `no Open vSwitch port named ${p.tap}` });
    } else if (tag !== String(uid)) {
      refused.push({ ...p, code: 'NOT_OWNER', message: `port ${p.tap} does not belong to uid ${uid}` });
    } else if (port.bridge !== p.bridge) {
      refused.push({ ...p, code: 'NO_SUCH_PORT', message: `port ${p.tap} is not on bridge ${p.bridge}` });
    } else {
      allowed.push(p);
    }
  }
  const r = await delPorts(run, ovsdb, allowed);
  if (!r.ok) throw new NetError('SYSTEM_ERROR', `Open vSwitch: removing ports failed: ${errorText(r.stderr)}`, { cause: r });
  await delLockFlows(run, ovsdb, allowed);
  return { removed: allowed, refused };
}
