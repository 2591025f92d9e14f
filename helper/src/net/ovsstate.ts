import { members, parseTables, str, strMap, uuid, type Row } from './ovsjson.js';
import type { Runner } from './runner.js';
import { vsctlOk } from './vsctl.js';

/** The external_ids keys this layer writes on the ports it adds. */
export const OWNER_KEY = 'xkvm-owner';
export const SESSION_KEY = 'xkvm-session';

export interface PortState {
  readonly name: string;
  /**
   * The bridge the port is on as ovs-vsctl names it (so `del-port BRIDGE NAME` takes it): on an
   * OVS fake (VLAN) bridge, the fake bridge; undefined only if OVS holds a port no bridge refers to.
   */
  readonly bridge: string | undefined;
  readonly externalIds: ReadonlyMap<string, string>;
}

const PORT_COLUMNS = '--columns=_uuid,name,external_ids,tag';
const FAKE_BRIDGE_COLUMNS = '--columns=_uuid,name,tag';

/** A port's VLAN tag (0–4095), or undefined when it has none. */
function tagOf(row: Row): number | undefined {
  const [tag] = members(row.get('tag'));
  return typeof tag === 'number' && Number.isInteger(tag) && tag >= 0 && tag <= 4095 ? tag : undefined;
}

/**
 * The ports named (missing ones are just absent) with their bridge and external_ids, in ONE
 * ovs-vsctl run: the ports (`list --if-exists`), every bridge's name and ports, and the fake
 * bridges, in the same transaction, so they are consistent.
 *
 * A fake bridge (`ovs-vsctl add-br FAKE PARENT VLAN`) has no Bridge row: it is a port of PARENT
 * with `fake_bridge=true` and tag VLAN, and a port "on" it is a port of PARENT with tag VLAN.
 * That is ovs-vsctl's own rule (vsctl.c: a port whose tag matches a fake bridge of its parent
 * belongs to that fake bridge), so a port is reported on the fake bridge, as `port-to-br` says.
 */
export async function readPorts(run: Runner, ovsdb: string | undefined, names: readonly string[]): Promise<Map<string, PortState>> {
  if (names.length === 0) return new Map();
  const portCommand = ['--if-exists', PORT_COLUMNS, 'list', 'Port', ...names];
  const out = await vsctlOk(run, ovsdb, [
    portCommand, ['--columns=name,ports', 'list', 'Bridge'], [FAKE_BRIDGE_COLUMNS, 'find', 'Port', 'fake_bridge=true'],
  ], 'reading ports', ['--format=json']);
  const tables = parseTables(out);
  const [ports, bridges, fakes] = [tables[0] ?? [], tables[1] ?? [], tables[2] ?? []];
  const bridgeOfPort = new Map<string, string>();
  for (const b of bridges) {
    const name = str(b.get('name'), 'bridge name');
    for (const m of members(b.get('ports'))) bridgeOfPort.set(uuid(m, 'bridge port'), name);
  }
  /** `PARENT VLAN` → the fake bridge's name. */
  const fakeBridges = new Map<string, string>();
  for (const f of fakes) {
    const parent = bridgeOfPort.get(uuid(f.get('_uuid'), 'fake bridge uuid'));
    const tag = tagOf(f);
    if (parent !== undefined && tag !== undefined) fakeBridges.set(`${parent} ${tag}`, str(f.get('name'), 'fake bridge name'));
  }
  const result = new Map<string, PortState>();
  for (const p of ports as Row[]) {
    const name = str(p.get('name'), 'port name');
    const parent = bridgeOfPort.get(uuid(p.get('_uuid'), 'port uuid'));
    const tag = tagOf(p);
    result.set(name, {
      name,
      bridge: (parent !== undefined && tag !== undefined ? fakeBridges.get(`${parent} ${tag}`) : undefined) ?? parent,
      externalIds: strMap(p.get('external_ids'), 'external_ids'),
    });
  }
  return result;
}
