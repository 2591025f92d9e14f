import { ifnameProblem } from '../../../shared/src/protocol/names.js';
import type { AccessDirective, Policy, PolicyUser, RuleSource, Who } from './types.js';
import { ANY_BRIDGE } from './types.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_QUEUES, DEFAULT_MAX_TAPS } from './values.js';

export interface Decision {
  readonly allowed: boolean;
  /** One sentence for a person and the audit log. */
  readonly reason: string;
  /** The line that decided; absent for a default deny (no line allowed it) or an invalid bridge. */
  readonly rule?: RuleSource;
}

/** How `who` matches `user`, as words for a reason ("user alice", "group kvm"), or undefined. */
function matchWho(who: Who, user: PolicyUser): string | undefined {
  switch (who.kind) {
    case 'anyone': return 'anyone (*)';
    case 'user': return who.name === user.name ? `user ${who.name}` : undefined;
    case 'group': return user.groups.includes(who.name) ? `group @${who.name}` : undefined;
  }
}

function firstMatch(rules: readonly AccessDirective[], user: PolicyUser, bridge: string) {
  for (const rule of rules) {
    if (rule.bridge !== ANY_BRIDGE && rule.bridge !== bridge) continue;
    for (const who of rule.who) {
      const how = matchWho(who, user);
      if (how !== undefined) return { rule, how };
    }
  }
  return undefined;
}

function at(source: RuleSource): string {
  return `${source.file}:${source.line}: ${source.text}`;
}

/**
 * May `user` put a tap on `bridge`? Default deny. Bridge names match exactly (or `*`). A
 * matching deny line beats every allow line, wherever each is written; among several matching
 * lines of the deciding kind, the first in file order (includes expanded) is named.
 * The bridge name is checked first: an invalid one is denied without looking further.
 */
export function decide(policy: Policy, user: PolicyUser, bridge: string): Decision {
  const problem = ifnameProblem(bridge);
  if (problem !== undefined) {
    return { allowed: false, reason: `"${bridge}" is not a valid bridge name: ${problem}` };
  }
  const denies = policy.access.filter((r) => r.kind === 'deny');
  const denied = firstMatch(denies, user, bridge);
  if (denied !== undefined) {
    return {
      allowed: false,
      reason: `${user.name} is denied ${bridge} as ${denied.how} by ${at(denied.rule.source)}`,
      rule: denied.rule.source,
    };
  }
  const allows = policy.access.filter((r) => r.kind === 'allow');
  const allowed = firstMatch(allows, user, bridge);
  if (allowed !== undefined) {
    return {
      allowed: true,
      reason: `${user.name} is allowed ${bridge} as ${allowed.how} by ${at(allowed.rule.source)}`,
      rule: allowed.rule.source,
    };
  }
  return { allowed: false, reason: `no line allows ${user.name} on ${bridge} (default deny)` };
}

/**
 * The first allow line that names `user` (by name, one of their groups, or `*`), whatever its
 * bridge; undefined when none does. A caller whom no allow line names has no business with the
 * helper: its ovs-cleanup is refused (DENIED) before anything runs.
 */
export function standing(policy: Policy, user: PolicyUser): RuleSource | undefined {
  for (const rule of policy.access) {
    if (rule.kind !== 'allow') continue;
    if (rule.who.some((who) => matchWho(who, user) !== undefined)) return rule.source;
  }
  return undefined;
}

export interface TapLimit {
  readonly limit: number;
  /** Which kind of line set it: the user's own, one of their groups', the default line, or none. */
  readonly from: 'user' | 'group' | 'default' | 'built-in';
  /** The line that set it; absent for the built-in default. */
  readonly rule?: RuleSource;
}

/**
 * A per-user limit (max-taps, max-connections) for `user`. Precedence:
 * 1. the line naming the user;
 * 2. else the lines naming the user's groups: the LARGEST of them (group lines grant capacity;
 *    belonging to one more group never lowers a limit) — on a tie, the first line;
 * 3. else the default line (`max-taps N`, `max-taps N *`);
 * 4. else the built-in default.
 */
function limitFor(user: PolicyUser, lines: {
  users: Policy['userMaxTaps']; groups: Policy['groupMaxTaps']; fallback: Policy['defaultMaxTaps']; builtIn: number;
}): TapLimit {
  const own = lines.users.get(user.name);
  if (own !== undefined) return { limit: own.value, from: 'user', rule: own.source };

  // The map keeps reading order, so with `>` a tie goes to the line read first.
  let best: { value: number; source: RuleSource } | undefined;
  for (const [group, entry] of lines.groups) {
    if (!user.groups.includes(group)) continue;
    if (best === undefined || entry.value > best.value) best = entry;
  }
  if (best !== undefined) return { limit: best.value, from: 'group', rule: best.source };

  const fallback = lines.fallback;
  if (fallback !== undefined) return { limit: fallback.value, from: 'default', rule: fallback.source };
  return { limit: lines.builtIn, from: 'built-in' };
}

/** How many taps `user` may hold at once, all bridges together (limitFor's precedence; 16 built in). */
export function maxTaps(policy: Policy, user: PolicyUser): TapLimit {
  return limitFor(user, { users: policy.userMaxTaps, groups: policy.groupMaxTaps, fallback: policy.defaultMaxTaps, builtIn: DEFAULT_MAX_TAPS });
}

/**
 * How many connections to the helper `user` may hold open at once (limitFor's precedence; 16
 * built in). The socket helper refuses a connection beyond it at once.
 */
export function maxConnections(policy: Policy, user: PolicyUser): TapLimit {
  return limitFor(user, {
    users: policy.userMaxConnections, groups: policy.groupMaxConnections, fallback: policy.defaultMaxConnections, builtIn: DEFAULT_MAX_CONNECTIONS,
  });
}

/**
 * The largest max-connections any user can have under `policy`: a connection beyond it is
 * refused before its user's own limit (which needs the user database) is known.
 */
export function maxConnectionsCeiling(policy: Policy): number {
  return Math.max(policy.defaultMaxConnections?.value ?? DEFAULT_MAX_CONNECTIONS,
    ...[...policy.userMaxConnections.values(), ...policy.groupMaxConnections.values()].map((l) => l.value));
}

/** How many queues `user` may ask for on one tap (limitFor's precedence; 8 built in, at most 16). */
export function maxQueues(policy: Policy, user: PolicyUser): TapLimit {
  return limitFor(user, { users: policy.userMaxQueues, groups: policy.groupMaxQueues, fallback: policy.defaultMaxQueues, builtIn: DEFAULT_MAX_QUEUES });
}

/** The VLAN the policy puts `user`'s taps on `bridge` in, and the line that does. */
export interface VlanGrant {
  readonly vid: number;
  /** Which rank of line decided: one naming the user, one of their groups, or `*`. */
  readonly from: 'user' | 'group' | 'anyone';
  readonly rule: RuleSource;
}

/** Two lines of one rank that give `user` different VLANs on the bridge: a policy error for that user. */
export interface VlanConflict {
  readonly conflict: readonly [RuleSource, RuleSource];
  readonly reason: string;
}

/**
 * The VLAN of `user`'s taps on `bridge`, or undefined when no vlan line applies. A line naming
 * the user beats lines naming their groups, which beat `*` lines. Within a rank every line must
 * agree: assemble refuses disagreeing lines for one WHO, so a conflict here is two lines for two
 * of the user's groups, reported with both (the request is then refused, never half-isolated).
 */
export function vlanFor(policy: Policy, user: PolicyUser, bridge: string): VlanGrant | VlanConflict | undefined {
  const ranks = [
    { from: 'user', matches: (w: Who) => w.kind === 'user' && w.name === user.name },
    { from: 'group', matches: (w: Who) => w.kind === 'group' && user.groups.includes(w.name) },
    { from: 'anyone', matches: (w: Who) => w.kind === 'anyone' },
  ] as const;
  for (const rank of ranks) {
    const lines = policy.vlans.filter((v) => v.bridge === bridge && v.who.some(rank.matches));
    const first = lines[0];
    if (first === undefined) continue;
    const other = lines.find((v) => v.vid !== first.vid);
    if (other !== undefined) {
      return {
        conflict: [first.source, other.source],
        reason: `the policy gives ${user.name} two VLANs on ${bridge}: ${first.vid} by ${at(first.source)} and ${other.vid} by ${at(other.source)}`,
      };
    }
    return { vid: first.vid, from: rank.from, rule: first.source };
  }
  return undefined;
}

/** The first mac-lock line that applies to `user` on `bridge` (its bridge, or `*`), or undefined. */
export function macLocked(policy: Policy, user: PolicyUser, bridge: string): RuleSource | undefined {
  for (const line of policy.macLocks) {
    if (line.bridge !== ANY_BRIDGE && line.bridge !== bridge) continue;
    if (line.who.some((w) => matchWho(w, user) !== undefined)) return line.source;
  }
  return undefined;
}
