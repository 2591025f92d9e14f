import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import type { Directive, Policy, RuleSource, Sourced, Who } from './types.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_QUEUES, DEFAULT_MAX_TAPS } from './values.js';

function at(source: RuleSource): string {
  return escapeForTerminal(`${source.file}:${source.line}`);
}

/** ` # /abs/path` after an include line whose path was written relative. */
function resolvedNote(d: Directive): string {
  if (d.kind !== 'include') return '';
  const written = d.source.text.split(/[ \t]+/)[1];
  return written === d.path ? '' : `   # ${escapeForTerminal(d.path)}`;
}

/** The lines in effect for one limit: its default (set or built in), then per user and per group. */
function limitLines(directive: string, builtIn: number, fallback: Sourced<number> | undefined,
  users: ReadonlyMap<string, Sourced<number>>, groups: ReadonlyMap<string, Sourced<number>>): string[] {
  return [
    fallback === undefined ? `${directive} ${builtIn} (default)` : `${directive} ${fallback.value} (default, set at ${at(fallback.source)})`,
    ...[...users].map(([name, entry]) => `${directive} ${entry.value} for ${name} (${at(entry.source)})`),
    ...[...groups].map(([name, entry]) => `${directive} ${entry.value} for @${name} (${at(entry.source)})`),
  ];
}

function whoList(who: readonly Who[]): string {
  return who.map((w) => (w.kind === 'anyone' ? '*' : w.kind === 'group' ? `@${w.name}` : w.name)).join(' ');
}

/**
 * The effective policy as `xkvm-helper policy show` prints it: every directive with its
 * file:line, includes expanded in place (indented under the include line), then the settings
 * in effect, defaults named as such, then how the lines combine.
 */
export function renderPolicy(policy: Policy): string {
  const out: string[] = [];
  const files = policy.files.map(escapeForTerminal);
  out.push(`# policy ${escapeForTerminal(policy.file)} (${files.length === 1 ? '1 file' : `${files.length} files: ${files.join(', ')}`})`);

  // Lines of an included file are indented under their include line, two spaces a level.
  const depthByFile = new Map<string, number>([[policy.file, 0]]);
  for (const d of policy.directives) {
    const indent = '  '.repeat(depthByFile.get(d.source.file) ?? 0);
    out.push(`${indent}${at(d.source)}: ${escapeForTerminal(d.source.text)}${resolvedNote(d)}`);
    if (d.kind === 'include') depthByFile.set(d.path, d.depth);
  }
  if (policy.directives.length === 0) out.push('# (no directives)');
  if (!policy.access.some((r) => r.kind === 'allow')) out.push('# no allow lines: every request is denied');

  out.push('', '# in effect');
  out.push(...limitLines('max-taps', DEFAULT_MAX_TAPS, policy.defaultMaxTaps, policy.userMaxTaps, policy.groupMaxTaps));
  out.push(...limitLines('max-connections', DEFAULT_MAX_CONNECTIONS, policy.defaultMaxConnections, policy.userMaxConnections, policy.groupMaxConnections));
  out.push(...limitLines('max-queues', DEFAULT_MAX_QUEUES, policy.defaultMaxQueues, policy.userMaxQueues, policy.groupMaxQueues));
  out.push(...(policy.vlans.length === 0 ? ['vlan: no lines (taps are on their bridge\'s default VLAN)']
    : policy.vlans.map((v) => escapeForTerminal(`vlan ${v.vid} on ${v.bridge} for ${whoList(v.who)}`) + ` (${at(v.source)})`)));
  out.push(...(policy.macLocks.length === 0 ? ['mac-lock: no lines (taps may send from any MAC)']
    : policy.macLocks.map((m) => escapeForTerminal(`mac-lock on ${m.bridge} for ${whoList(m.who)}`) + ` (${at(m.source)})`)));
  out.push(policy.ovsdb === undefined
    ? 'ovsdb: not set (ovs-vsctl uses its own default database)'
    : `ovsdb ${escapeForTerminal(policy.ovsdb.value)} (${at(policy.ovsdb.source)})`);
  out.push(policy.auditLog === undefined
    ? 'audit-log: not set (audit records go to stderr only)'
    : `audit-log ${escapeForTerminal(policy.auditLog.value)} (${at(policy.auditLog.source)})`);

  out.push('', '# how the lines combine',
    '# a bridge no allow line names for a user is denied (default deny); bridge names match exactly or *',
    '# a matching deny line beats every allow line, whatever the order',
    "# max-taps, max-connections, max-queues: the user's own line, else the largest of their groups' lines, else the default",
    '# vlan: a line naming the user beats their groups\' lines, which beat * lines; vlan and mac-lock grant nothing (allow and deny decide)',
    '# mac-lock: any matching line locks; a request on that bridge must then carry the guest\'s MAC');
  return out.join('\n') + '\n';
}
