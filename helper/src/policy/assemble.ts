import { syntaxError } from './errors.js';
import type { AccessDirective, Directive, Policy, RuleSource, Sourced } from './types.js';

function at(source: RuleSource): string {
  return `${source.file}:${source.line}`;
}

/**
 * Build the policy from its directives (file order, includes expanded). Settings that can only
 * have one value are checked here, across all files: one ovsdb, one audit-log, one default
 * max-taps (`max-taps N` or `max-taps N *`), one max-taps line per user and per group. A second
 * one is an error at its line naming the first, so no reader has to guess which one wins.
 */
export function assemble(file: string, files: readonly string[], directives: readonly Directive[]): Policy {
  const access: AccessDirective[] = [];
  const userMaxTaps = new Map<string, Sourced<number>>();
  const groupMaxTaps = new Map<string, Sourced<number>>();
  let defaultMaxTaps: Sourced<number> | undefined;
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
      case 'max-taps': {
        const value = { value: d.limit, source: d.source };
        if (d.who.length === 0) {
          once(defaultMaxTaps, 'the default max-taps', 'one max-taps line without WHO (or with *) in all the policy files', d.source);
          defaultMaxTaps = value;
        }
        for (const who of d.who) {
          if (who.kind === 'anyone') {
            once(defaultMaxTaps, 'the default max-taps', 'one max-taps line without WHO (or with *) in all the policy files', d.source);
            defaultMaxTaps = value;
          } else {
            const map = who.kind === 'user' ? userMaxTaps : groupMaxTaps;
            const label = who.kind === 'user' ? `max-taps for user ${who.name}` : `max-taps for group @${who.name}`;
            once(map.get(who.name), label, `one max-taps line per ${who.kind} in all the policy files`, d.source);
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
  return { file, files, directives, access, defaultMaxTaps, userMaxTaps, groupMaxTaps, ovsdb, auditLog };
}
