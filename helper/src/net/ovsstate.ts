import { members, parseTables, str, strMap, uuid, type Row } from './ovsjson.js';
import type { Runner } from './runner.js';
import { vsctlOk } from './vsctl.js';

/** The external_ids keys this layer writes on the ports it adds. */
export const OWNER_KEY = 'xkvm-owner';
export const SESSION_KEY = 'xkvm-session';

export interface PortState {
  readonly name: string;
  /** The bridge the port is on (undefined only if OVS holds a port no bridge refers to). */
  readonly bridge: string | undefined;
  readonly externalIds: ReadonlyMap<string, string>;
}

const PORT_COLUMNS = '--columns=_uuid,name,external_ids';

/**
 * The ports named (missing ones are just absent) with their bridge and external_ids, in ONE
 * ovs-vsctl run: the ports (`list --if-exists`) and every bridge's name and ports in the same
 * transaction, so the two are consistent.
 */
export async function readPorts(run: Runner, ovsdb: string | undefined, names: readonly string[]): Promise<Map<string, PortState>> {
  if (names.length === 0) return new Map();
  const portCommand = ['--if-exists', PORT_COLUMNS, 'list', 'Port', ...names];
  const out = await vsctlOk(run, ovsdb, [portCommand, ['--columns=name,ports', 'list', 'Bridge']],
    'reading ports', ['--format=json']);
  const tables = parseTables(out);
  const [ports, bridges] = [tables[0] ?? [], tables[1] ?? []];
  const bridgeOfPort = new Map<string, string>();
  for (const b of bridges) {
    const name = str(b.get('name'), 'bridge name');
    for (const m of members(b.get('ports'))) bridgeOfPort.set(uuid(m, 'bridge port'), name);
  }
  const result = new Map<string, PortState>();
  for (const p of ports as Row[]) {
    const name = str(p.get('name'), 'port name');
    result.set(name, {
      name,
      bridge: bridgeOfPort.get(uuid(p.get('_uuid'), 'port uuid')),
      externalIds: strMap(p.get('external_ids'), 'external_ids'),
    });
  }
  return result;
}
