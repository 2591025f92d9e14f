import { NetError } from './errors.js';
import { OWNER_KEY, SESSION_KEY, readPorts } from './ovsstate.js';
import { errorText, type Runner } from './runner.js';
import type { PortRef } from './types.js';
import { vsctl } from './vsctl.js';

/**
 * `other_config:transient=true` is what `ovs-ctl --delete-transient-ports` looks for
 * (/usr/share/openvswitch/scripts/ovs-ctl: `find port other_config:transient=true`), so ports
 * whose taps vanished with a reboot are dropped when Open vSwitch restarts.
 */
const TRANSIENT = 'other_config:transient=true';

/**
 * A port to add, with the MTU to ask for its Interface (none asked when undefined) and the VLAN
 * tag to give it (an access port of that VLAN: vlan.ts; none when undefined).
 */
interface NewPort extends PortRef {
  readonly mtu?: number | undefined;
  readonly tag?: number | undefined;
}

/**
 * The ovs-vsctl commands that add each port, tag it with its owner (and session) and ask its
 * MTU (`mtu_request`: without it OVS leaves a port added later at the MTU it came with); a port
 * with a `tag` is created with it (never untagged for a moment).
 */
function addPortCommands(ports: readonly NewPort[], uid: number, session: string | undefined): string[][] {
  return ports.flatMap(({ bridge, tap, mtu, tag }) => [
    ['--may-exist', 'add-port', bridge, tap, ...(tag === undefined ? [] : [`tag=${tag}`])],
    ['set', 'Port', tap, `external_ids:${OWNER_KEY}=${uid}`,
      ...(session === undefined ? [] : [`external_ids:${SESSION_KEY}=${session}`]), TRANSIENT],
    ...(mtu === undefined ? [] : [['set', 'Interface', tap, `mtu_request=${mtu}`]]),
  ]);
}

/** Adds and tags all ports in ONE ovs-vsctl transaction; SYSTEM_ERROR if it fails. */
export async function addPorts(run: Runner, ovsdb: string | undefined, ports: readonly NewPort[], uid: number,
  session: string | undefined): Promise<void> {
  if (ports.length === 0) return;
  const r = await vsctl(run, ovsdb, addPortCommands(ports, uid, session));
  if (r.exitCode !== 0) {
    throw new NetError('SYSTEM_ERROR', `Open vSwitch: adding port(s) ${ports.map((p) => `${p.tap} to ${p.bridge}`).join(', ')} `
      + `failed: ${errorText(r.stderr)}`, { cause: r });
  }
}

/**
 * Removes ports in ONE ovs-vsctl transaction (`--if-exists del-port BRIDGE TAP`: a missing port
 * is fine, a port on another bridge or a missing bridge fails the whole transaction).
 */
export async function delPorts(run: Runner, ovsdb: string | undefined,
  ports: readonly PortRef[]): Promise<{ ok: boolean; stderr: string }> {
  if (ports.length === 0) return { ok: true, stderr: '' };
  const r = await vsctl(run, ovsdb, ports.map(({ bridge, tap }) => ['--if-exists', 'del-port', bridge, tap]));
  return { ok: r.exitCode === 0, stderr: r.stderr };
}

/**
 * Removes those of `ports` that are really on the bridge named and (when `owner` is given)
 * tagged with that owner: one ovs-vsctl to read, one to remove. Returns the ports left alone.
 */
export async function delCheckedPorts(run: Runner, ovsdb: string | undefined, ports: readonly PortRef[],
  owner: number | undefined): Promise<{ skipped: { tap: string; reason: string }[] }> {
  const state = await readPorts(run, ovsdb, ports.map((p) => p.tap));
  const here: PortRef[] = [];
  const skipped: { tap: string; reason: string }[] = [];
  for (const p of ports) {
    const s = state.get(p.tap);
    if (s === undefined) continue; // gone already
    if (s.bridge !== p.bridge) skipped.push({ tap: p.tap, reason: `port is on ${s.bridge ?? 'no bridge'}, not ${p.bridge}` });
    else if (owner !== undefined && s.externalIds.get(OWNER_KEY) !== String(owner)) {
      skipped.push({ tap: p.tap, reason: `port is not tagged ${OWNER_KEY}=${owner}` });
    } else here.push(p);
  }
  const r = await delPorts(run, ovsdb, here);
  if (!r.ok) throw new NetError('SYSTEM_ERROR', `Open vSwitch: removing ports failed: ${errorText(r.stderr)}`, { cause: r });
  return { skipped };
}
