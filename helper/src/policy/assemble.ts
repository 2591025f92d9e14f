import { syntaxError } from './errors.js';
import type { AccessDirective, Directive, Policy, RuleSource, Sourced } from './types.js';

function at(source: RuleSource): string {
  return `${source.file}:${source.line}`;
}

/** The lines of one limit (max-taps, max-connections) as they are read. */
interface Limits {
  default: Sourced<number> | undefined;
  readonly users: Map<string, Sourced<number>>;
  readonly groups: Map<string, Sourced<number>>;
}

function newLimits(): Limits {
  return { default: undefined, users: new Map(), groups: new Map() };
}

/**
 * Build the policy from its directives (file order, includes expanded). Settings that can only
 * have one value are checked here, across all files: one ovsdb, one audit-log, one default
 * max-taps (`max-taps N` or `max-taps N *`), one max-taps line per user and per group, and the
 * same for max-connections. A second
 * one is an error at its line naming the first, so no reader has to guess which one wins.
 */
export function assemble(file: string, files: readonly string[], directives: readonly Directive[]): Policy {
  const access: AccessDirective[] = [];
  const taps = newLimits();
  const connections = newLimits();
  let ovsdb: Sourced<string> | undefined;
  let auditLog: Sourced<string> | undefined;

  const once = <T>(previous: Sourced<T> | undefined, what: string, expected: string, source: RuleSource): void => {
    if (previous !== undefined && previous.source !== source) {
      throw syntaxError(source.file, source.line, `${what} is already set at ${at(previous.source)}`, expected);
    }
  };

  for (const d of directives) {
    switch (d.kind) {
      case 'allow':
      case 'deny':
        access.push(d);
        break;
      case 'max-taps':
      case 'max-connections': {
        const limits = d.kind === 'max-taps' ? taps : connections;
        const value = { value: d.limit, source: d.source };
        const setDefault = (): void => {
          once(limits.default, `the default ${d.kind}`, `one ${d.kind} line without WHO (or with *) in all the policy files`, d.source);
          limits.default = value;
        };
        if (d.who.length === 0) setDefault();
        for (const who of d.who) {
          if (who.kind === 'anyone') {
            setDefault();
          } else {
            const map = who.kind === 'user' ? limits.users : limits.groups;
            const label = who.kind === 'user' ? `${d.kind} for user ${who.name}` : `${d.kind} for group @${who.name}`;
            once(map.get(who.name), label, `one ${d.kind} line per ${who.kind} in all the policy files`, d.source);
            map.set(who.name, value);
          }
        }
        break;
      }
      case 'ovsdb':
        once(ovsdb, 'ovsdb', 'one ovsdb line in all the policy files', d.source);
        ovsdb = { value: d.socket, source: d.source };
        break;
      case 'audit-log':
        once(auditLog, 'audit-log', 'one audit-log line in all the policy files', d.source);
        auditLog = { value: d.path, source: d.source };
        break;
      case 'include':
        break;
    }
  }
  return {
    file, files, directives, access,
    defaultMaxTaps: taps.default, userMaxTaps: taps.users, groupMaxTaps: taps.groups,
    defaultMaxConnections: connections.default, userMaxConnections: connections.users, groupMaxConnections: connections.groups,
    ovsdb, auditLog,
  };
}
