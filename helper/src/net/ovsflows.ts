/**
 * MAC lock on an Open vSwitch bridge (policy `mac-lock`): two OpenFlow flows in table 0 of the
 * bridge that holds the port (an OVS fake (VLAN) bridge's parent):
 *
 *   priority=40001,in_port=TAP,dl_src=MAC actions=NORMAL
 *   priority=40000,in_port=TAP            actions=drop
 *
 * so frames from the tap with another source MAC are dropped, and the guest's own go to the
 * bridge's normal switching (the admin's own table-0 flows below priority 40000 do not see the
 * locked port's traffic). Both carry a cookie made from the tap's name (`0x786b76` "xkv" and the
 * name's 40 random bits), so they are deleted exactly (`del-flows BR cookie=C/-1`) and nothing
 * else is. Flows outlive their port (and OVS may give its port number to a later port), so every
 * removal of a port (session end, reaper, ovs-cleanup, roll-back) deletes them too.
 *
 * ovs-ofctl reaches a bridge at `unix:DIR/BRIDGE.mgmt`, DIR being the directory of the policy's
 * `ovsdb` socket (`unix:DIR/db.sock`); without one, ovs-ofctl's default run directory.
 */
import { createHash } from 'node:crypto';
import { NetError } from './errors.js';
import { members, parseTables, str, uuid } from './ovsjson.js';
import { errorText, type Runner } from './runner.js';
import { OVS_OFCTL, OVS_TIMEOUT_MS, ofctlInstalled } from './tools.js';
import type { PortRef } from './types.js';
import { vsctlOk } from './vsctl.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const ALLOW_PRIORITY = 40001;
const DROP_PRIORITY = 40000;

/** A port on an OVS bridge, to be locked to one source MAC (checked by the caller). */
export interface FlowLock extends PortRef {
  readonly mac: string;
}

/**
 * The cookie of a tap's flows: `0x786b76` and the 40 bits of its name's 8 base32 characters
 * (`xkvm` names: one cookie a tap); another name gets 40 bits of its SHA-256.
 */
function cookieOf(tap: string): string {
  let low = 0n;
  const m = /^xkvm([a-z2-7]{8})$/.exec(tap);
  if (m !== null) {
    for (const c of m[1]!) low = (low << 5n) | BigInt(ALPHABET.indexOf(c));
  } else {
    low = BigInt(`0x${createHash('sha256').update(tap).digest('hex').slice(0, 10)}`);
  }
  return `0x786b76${low.toString(16).padStart(10, '0')}`;
}

/** Names ovs-ofctl reads as a port number or a reserved port in `in_port=` (ovs-ofctl(8)), not as a port's name. */
const NOT_A_PORT_NAME = /^(\d+|0x[0-9a-f]+|local|none|in_port|all|flood|normal|controller|table|any|unset)$/i;

/** ovs-ofctl's address of a bridge, next to the policy's ovsdb socket when it is a unix socket. */
function target(ovsdb: string | undefined, bridge: string): string {
  const m = ovsdb === undefined ? null : /^unix:(\/.*)\/[^/]+$/.exec(ovsdb);
  return m === null ? bridge : `unix:${m[1]!}/${bridge}.mgmt`;
}

/**
 * The bridge whose flow table holds each named bridge's ports: itself, or a fake bridge's
 * parent; a name that is no bridge (any more) is absent. One ovs-vsctl.
 */
async function flowBridges(run: Runner, ovsdb: string | undefined, names: readonly string[]): Promise<Map<string, string>> {
  const out = await vsctlOk(run, ovsdb, [['--columns=name,ports', 'list', 'Bridge'], ['--columns=_uuid,name', 'find', 'Port', 'fake_bridge=true']],
    'reading bridges', ['--format=json']);
  const [bridges, fakes] = parseTables(out);
  const owner = new Map<string, string>();
  const result = new Map<string, string>();
  for (const b of bridges ?? []) {
    const name = str(b.get('name'), 'bridge name');
    result.set(name, name);
    for (const p of members(b.get('ports'))) owner.set(uuid(p, 'bridge port'), name);
  }
  for (const f of fakes ?? []) {
    const parent = owner.get(uuid(f.get('_uuid'), 'fake bridge uuid'));
    if (parent !== undefined) result.set(str(f.get('name'), 'fake bridge name'), parent);
  }
  return new Map([...result].filter(([name]) => names.includes(name)));
}

/** Groups items by the bridge whose flow table holds them (items on no bridge are dropped). */
function byTable<T extends PortRef>(items: readonly T[], tables: ReadonlyMap<string, string>): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const table = tables.get(item.bridge);
    if (table !== undefined) groups.set(table, [...(groups.get(table) ?? []), item]);
  }
  return groups;
}

async function ofctl(run: Runner, args: readonly string[], input: string): Promise<{ exitCode: number; stderr: string }> {
  return run({ file: OVS_OFCTL, args: [...args], input, timeoutMs: OVS_TIMEOUT_MS });
}

/**
 * Adds each port's two flows (all of a bridge's in one `ovs-ofctl add-flows`, OpenFlow 1.0, which
 * every bridge speaks; the port is still down meanwhile: create.ts). SYSTEM_ERROR if ovs-ofctl is missing, a bridge is gone, or ovs-ofctl fails; the caller
 * then deletes the flows (delLockFlows) with the ports.
 */
export async function addLockFlows(run: Runner, ovsdb: string | undefined, locks: readonly FlowLock[]): Promise<void> {
  if (locks.length === 0) return;
  if (!ofctlInstalled()) throw new NetError('SYSTEM_ERROR', `mac-lock on Open vSwitch needs ${OVS_OFCTL}, which is not installed`);
  const odd = locks.find((l) => NOT_A_PORT_NAME.test(l.tap));
  if (odd !== undefined) throw new NetError('SYSTEM_ERROR', `mac-lock: ${odd.tap} cannot be named in an OpenFlow match`);
  const tables = await flowBridges(run, ovsdb, [...new Set(locks.map((l) => l.bridge))]);
  const lost = locks.find((l) => !tables.has(l.bridge));
  if (lost !== undefined) throw new NetError('SYSTEM_ERROR', `mac-lock: Open vSwitch bridge ${lost.bridge} is gone`);
  await Promise.all([...byTable(locks, tables)].map(async ([bridge, mine]) => {
    // The drop first: if only some get in, the port passes nothing (and the caller deletes them).
    const flows = mine.flatMap(({ tap, mac }) => [
      `cookie=${cookieOf(tap)},priority=${DROP_PRIORITY},in_port=${tap},actions=drop`,
      `cookie=${cookieOf(tap)},priority=${ALLOW_PRIORITY},in_port=${tap},dl_src=${mac},actions=NORMAL`,
    ]);
    const r = await ofctl(run, ['add-flows', target(ovsdb, bridge), '-'], `${flows.join('\n')}\n`);
    if (r.exitCode !== 0) {
      throw new NetError('SYSTEM_ERROR', `mac-lock: adding the flows of ${mine.map((l) => l.tap).join(', ')} to ${bridge} failed: ${errorText(r.stderr)}`, { cause: r });
    }
  }));
}

/** Deletes the flows with these ports' cookies from one bridge's table; the error output when that failed. */
async function delFlows(run: Runner, ovsdb: string | undefined, bridge: string, ports: readonly PortRef[]): Promise<string | undefined> {
  const specs = [...new Set(ports.map((p) => `cookie=${cookieOf(p.tap)}/-1`))];
  const r = await ofctl(run, ['del-flows', target(ovsdb, bridge), '-'], `${specs.join('\n')}\n`);
  return r.exitCode === 0 ? undefined : errorText(r.stderr);
}

/**
 * Deletes the mac-lock flows of `ports` (whether they were locked or not: their cookies are
 * theirs alone): one ovs-ofctl a bridge named; only for a name that is not a bridge with a flow
 * table of its own (an OVS fake bridge, or a bridge gone) one ovs-vsctl finds the parent (a
 * bridge that is gone took its flows with it). Nothing to do when ovs-ofctl is not installed (no
 * flows were made). SYSTEM_ERROR naming the bridge when a deletion failed.
 */
export async function delLockFlows(run: Runner, ovsdb: string | undefined, ports: readonly PortRef[]): Promise<void> {
  if (ports.length === 0 || !ofctlInstalled()) return;
  const named = new Map<string, PortRef[]>();
  for (const p of ports) named.set(p.bridge, [...(named.get(p.bridge) ?? []), p]);
  const failed = new Map<string, string>();
  await Promise.all([...named].map(async ([bridge, mine]) => {
    const problem = await delFlows(run, ovsdb, bridge, mine);
    if (problem !== undefined) failed.set(bridge, problem);
  }));
  if (failed.size === 0) return;
  const tables = await flowBridges(run, ovsdb, [...failed.keys()]);
  const problems: string[] = [];
  await Promise.all([...failed].map(async ([bridge, first]) => {
    const table = tables.get(bridge);
    if (table === undefined) return;
    const problem = table === bridge ? first : await delFlows(run, ovsdb, table, named.get(bridge) ?? []);
    if (problem !== undefined) problems.push(`deleting the mac-lock flows of ${(named.get(bridge) ?? []).map((p) => p.tap).join(', ')} on ${table} failed: ${problem}`);
  }));
  if (problems.length > 0) throw new NetError('SYSTEM_ERROR', `Open vSwitch: ${problems.join('; ')}`);
}
