/** What `xkvm doctor` finds for each --netdev: the bridge, the policy's word on it, the grants that apply. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isValidIfname, IFNAME_RULE } from '../../../shared/src/protocol/names.js';
import { ClientError } from '../errors.js';
import { queueCount, splitFields } from '../net/netdev.js';
import type { Finding } from './finding.js';
import { checkBridge, type PolicyAnswer } from './policy.js';

/** A --netdev as doctor reads it: the connection and the options that matter here. */
export interface NetdevAsk {
  readonly spec: string;
  /** 'user', or a bridge. */
  readonly connection: string;
  readonly queues: number;
  readonly autoMac: boolean;
  readonly vhost: boolean;
}

export function parseNetdevAsk(spec: string): NetdevAsk {
  const [connection, ...tokens] = splitFields(spec);
  if (connection === undefined || (connection !== 'user' && !isValidIfname(connection))) {
    throw new ClientError('BAD_NETDEV', `--netdev '${spec}': the first field must be 'user' or a bridge name (${IFNAME_RULE})`);
  }
  let queues = 1;
  let autoMac = true;
  let vhost = false;
  for (const token of tokens) {
    const [key, value = ''] = token.split(/=(.*)/s);
    if (key === 'queues') {
      const n = queueCount(value);
      if (n === undefined) throw new ClientError('BAD_NETDEV', `--netdev '${spec}': queues= must be a whole number from 1 to 16, got '${value}'`);
      queues = n;
    }
    if ((key === 'mac' || key === 'macaddr') && value !== 'auto') autoMac = false;
    if (key === 'vhost' && value === 'on') vhost = true;
  }
  return { spec, connection, queues, autoMac, vhost };
}

export interface BridgeContext {
  readonly uid: number;
  /** How to run the helper's `policy check` (undefined: not found). */
  readonly program: readonly string[] | undefined;
  /** The policy file to check against (the helper's default when undefined). */
  readonly config: string | undefined;
  readonly sysNet?: string;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function deviceFinding(bridge: string, sysNet: string): Finding {
  const dir = join(sysNet, bridge);
  const mtu = read(join(dir, 'mtu'));
  if (mtu === undefined) {
    return { level: 'fail', subject: bridge, text: 'no such device on this host', fix: `ask an admin to create the bridge (ip link add ${bridge} type bridge), or name one that exists` };
  }
  let linux = false;
  try {
    linux = statSync(join(dir, 'bridge')).isDirectory();
  } catch {
    // not a Linux bridge
  }
  return { level: 'ok', subject: bridge, text: `${linux ? 'a Linux bridge' : 'exists, not a Linux bridge (Open vSwitch, or not a bridge at all: the helper checks)'}, MTU ${mtu} (your tap gets it too)` };
}

function policyFindings(ask: NetdevAsk, answer: PolicyAnswer, user: string): Finding[] {
  const bridge = ask.connection;
  if (!answer.allowed) {
    return [{
      level: 'fail', subject: bridge, text: `the helper's policy refuses you: ${answer.vlanConflict ?? answer.reason}`,
      fix: `ask an admin for a line 'allow ${bridge} ${user}' in the helper's policy (xkvm-helper policy check --user ${user} --bridge ${bridge} explains)`,
    }];
  }
  const out: Finding[] = [{ level: 'ok', subject: bridge, text: `allowed for you by ${answer.rule ?? 'the policy'}` }];
  if (ask.queues > answer.maxQueues) {
    out.push({ level: 'fail', subject: bridge, text: `queues=${ask.queues} is more than your max-queues ${answer.maxQueues}`, fix: `ask for queues=${answer.maxQueues} or fewer` });
  }
  const grants: string[] = [];
  if (ask.queues > 1 && ask.queues <= answer.maxQueues) grants.push(`a ${ask.queues}-queue tap (max-queues ${answer.maxQueues})`);
  if (answer.vlan !== null) grants.push(`an access port of VLAN ${answer.vlan} (set by the policy)`);
  if (answer.macLock !== null) {
    grants.push(`mac-lock: only frames from the guest's MAC pass (${answer.macLock})${ask.autoMac ? '; mac=auto becomes a random 52:54:00 MAC' : ''}`);
  }
  if (grants.length > 0) out.push({ level: 'ok', subject: bridge, text: grants.join('; ') });
  return out;
}

/** The findings of one --netdev. */
export async function netdevFindings(ask: NetdevAsk, ctx: BridgeContext, user: string): Promise<{ findings: Finding[]; answer?: PolicyAnswer }> {
  if (ask.connection === 'user') return { findings: [{ level: 'ok', subject: 'user', text: 'user networking (slirp) needs no helper and no bridge' }] };
  const findings = [deviceFinding(ask.connection, ctx.sysNet ?? '/sys/class/net')];
  if (ctx.program === undefined) {
    findings.push({ level: 'warn', subject: ask.connection, text: 'cannot check the policy: the helper\'s program is neither beside this client nor installed', fix: 'run doctor from a complete xkvm installation' });
    return { findings };
  }
  try {
    const answer = await checkBridge(ctx.program, ctx.config, ctx.uid, ask.connection);
    findings.push(...policyFindings(ask, answer, user));
    const filtering = read(join(ctx.sysNet ?? '/sys/class/net', ask.connection, 'bridge', 'vlan_filtering'));
    const linux = read(join(ctx.sysNet ?? '/sys/class/net', ask.connection, 'bridge', 'stp_state')) !== undefined;
    if (answer.allowed && answer.vlan !== null && linux && filtering !== '1') {
      findings.push({
        level: 'fail', subject: ask.connection, text: `the policy puts your taps in VLAN ${answer.vlan}, but ${ask.connection} does not filter VLANs${filtering === undefined ? ' (this kernel cannot)' : ''}: the helper refuses`,
        fix: `ask an admin to turn VLAN filtering on (ip link set ${ask.connection} type bridge vlan_filtering 1)`,
      });
    }
    return { findings, answer };
  } catch (error) {
    findings.push({ level: 'warn', subject: ask.connection, text: `cannot check the policy: ${(error as Error).message}`, fix: 'ask an admin to check the helper\'s policy file' });
    return { findings };
  }
}

/** Taps owned by `uid` now (/sys: tun devices whose owner is that uid). */
function tapsOwnedBy(uid: number, sysNet = '/sys/class/net'): number {
  let n = 0;
  let names: string[] = [];
  try {
    names = readdirSync(sysNet);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (read(join(sysNet, name, 'tun_flags')) === undefined) continue;
    if (read(join(sysNet, name, 'owner')) === String(uid)) n += 1;
  }
  return n;
}

/** Taps in use against max-taps (the policy's, from the first answer): the count is the user's taps now. */
export function tapsFinding(uid: number, answer: PolicyAnswer | undefined, wanted: number, sysNet?: string): Finding | undefined {
  if (answer === undefined || wanted === 0) return undefined;
  const mine = tapsOwnedBy(uid, sysNet);
  const left = answer.maxTaps - mine;
  const text = `${mine} tap(s) of yours exist now; max-taps ${answer.maxTaps}, so ${Math.max(0, left)} left (the helper counts the taps your requests made)`;
  return left >= wanted
    ? { level: 'ok', subject: 'taps', text }
    : { level: 'fail', subject: 'taps', text: `${text}; this VM needs ${wanted}`, fix: 'stop a VM (or delete persistent taps with xkvm tap-control) first' };
}
