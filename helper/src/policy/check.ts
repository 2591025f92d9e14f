import { isValidIfname } from '../../../shared/src/protocol/names.js';
import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import { decide, macLocked, maxConnections, maxQueues, maxTaps, vlanFor, type Decision, type TapLimit } from './evaluate.js';
import type { Policy, PolicyUser, RuleSource } from './types.js';

/**
 * Exit statuses of `xkvm-helper policy check`: 0 when the user may use the bridge, 1 when not
 * (including an invalid bridge name). What stops the check itself is thrown and reported by
 * main.ts with its own status: 3 when the policy cannot be used, 4 for an unknown user.
 */
const CHECK_EXIT = { allow: 0, deny: 1 } as const;

export interface CheckResult {
  /** What to print on stdout, ending in a newline. */
  readonly text: string;
  readonly status: (typeof CHECK_EXIT)[keyof typeof CHECK_EXIT];
  readonly decision: Decision;
  readonly limit: TapLimit;
  /** The same for programs (`policy check --json`, read by `xkvm doctor`); see CheckJson. */
  readonly json: CheckJson;
}

/**
 * `policy check --json`: one object. Lines are `FILE:LINE: TEXT`; null where no line applies.
 * `taps` is present when the use was looked for: `{held}` or `{unknown: why}`.
 */
interface CheckJson {
  readonly allowed: boolean;
  readonly user: string;
  readonly uid: number;
  readonly groups: readonly string[];
  readonly bridge: string;
  readonly rule: string | null;
  readonly reason: string;
  readonly maxTaps: number;
  readonly maxConnections: number;
  readonly maxQueues: number;
  readonly vlan: number | null;
  readonly vlanConflict: string | null;
  readonly macLock: string | null;
  readonly taps?: TapUsage;
}

function line(source: RuleSource): string {
  return `${source.file}:${source.line}: ${source.text}`;
}

function limitText(limit: TapLimit, directive: 'max-taps' | 'max-connections' | 'max-queues'): string {
  switch (limit.from) {
    case 'built-in': return `${limit.limit} (default: no ${directive} line applies)`;
    case 'default': return `${limit.limit} (default line ${limit.rule === undefined ? '' : line(limit.rule)})`;
    case 'user': return `${limit.limit} (user line ${limit.rule === undefined ? '' : line(limit.rule)})`;
    case 'group': return `${limit.limit} (largest group line ${limit.rule === undefined ? '' : line(limit.rule)})`;
  }
}

/** The vlan line for the user on the bridge, as `policy check` explains it. */
function vlanText(policy: Policy, user: PolicyUser, bridge: string): { text: string; conflict: boolean } {
  const vlan = vlanFor(policy, user, bridge);
  if (vlan === undefined) return { text: `none (no vlan line names ${user.name} on ${bridge}: the bridge's default VLAN)`, conflict: false };
  if ('conflict' in vlan) return { text: `CONFLICT: ${vlan.reason}; requests are refused until it is fixed`, conflict: true };
  const rank = vlan.from === 'user' ? 'user line' : vlan.from === 'group' ? 'group line' : '* line';
  return { text: `${vlan.vid} (${rank} ${line(vlan.rule)})`, conflict: false };
}

/** How many taps the user's requests made that still exist (the ledger's count), or why it is not known. */
export type TapUsage = { readonly held: number } | { readonly unknown: string };

function usageText(usage: TapUsage | undefined, limit: TapLimit): string | undefined {
  if (usage === undefined) return undefined;
  if ('unknown' in usage) return `taps: unknown (${usage.unknown})`;
  return `taps: ${usage.held} of ${limit.limit} in use, ${Math.max(0, limit.limit - usage.held)} left`;
}

/** The logic of `xkvm-helper policy check --user U --bridge B`, given the resolved user (and their use, when known). */
export function checkPolicy(policy: Policy, user: PolicyUser, bridge: string, usage?: TapUsage): CheckResult {
  const decision = decide(policy, user, bridge);
  const limit = maxTaps(policy, user);
  const vlan = vlanText(policy, user, bridge);
  const lock = macLocked(policy, user, bridge);
  // Two vlan lines of one rank that disagree: the helper refuses the request, so check says DENY.
  const allowed = decision.allowed && !vlan.conflict;
  const verdict = allowed
    ? `ALLOW: ${user.name} may put a tap on ${bridge}`
    : `DENY: ${user.name} may not put a tap on ${bridge}`;
  const groups = user.groups.length === 0 ? '(none)' : user.groups.join(', ');
  const text = [
    verdict,
    `decided by: ${decision.rule !== undefined ? line(decision.rule)
      : isValidIfname(bridge) ? 'no line (default deny)' : 'no line (invalid bridge name)'}`,
    `reason: ${decision.reason}`,
    `user: ${user.name} (uid ${user.uid}); groups considered: ${groups}`,
    `max-taps: ${limitText(limit, 'max-taps')}`,
    ...[usageText(usage, limit)].filter((t) => t !== undefined),
    `max-connections: ${limitText(maxConnections(policy, user), 'max-connections')}`,
    `max-queues: ${limitText(maxQueues(policy, user), 'max-queues')}`,
    `vlan: ${vlan.text}`,
    `mac-lock: ${lock === undefined ? `no (no mac-lock line names ${user.name} on ${bridge})` : `yes, requests must carry the guest's MAC (${line(lock)})`}`,
  ].map(escapeForTerminal).join('\n') + '\n';
  const grant = vlanFor(policy, user, bridge);
  const json: CheckJson = {
    allowed, user: user.name, uid: user.uid, groups: user.groups, bridge,
    rule: decision.rule === undefined ? null : line(decision.rule), reason: decision.reason,
    maxTaps: limit.limit, maxConnections: maxConnections(policy, user).limit, maxQueues: maxQueues(policy, user).limit,
    vlan: grant !== undefined && !('conflict' in grant) ? grant.vid : null,
    vlanConflict: grant !== undefined && 'conflict' in grant ? grant.reason : null,
    macLock: lock === undefined ? null : line(lock),
    ...(usage === undefined ? {} : { taps: usage }),
  };
  return { text, status: allowed ? CHECK_EXIT.allow : CHECK_EXIT.deny, decision, limit, json };
}
