import { syntaxError } from './errors.js';
import type { AccessDirective, Directive, MacLockDirective, Policy, RuleSource, Sourced, VlanDirective, Who } from './types.js';

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

function whoText(who: Who): string {
  return who.kind === 'anyone' ? '*' : who.kind === 'group' ? `group @${who.name}` : `user ${who.name}`;
}

/**
 * Build the policy from its directives (file order, includes expanded). Settings that can only
 * have one value are checked here, across all files: one ovsdb, one audit-log, one default
 * max-taps (`max-taps N` or `max-taps N *`), one max-taps line per user and per group, and the
 * same for max-connections and max-queues; one VLAN per WHO (user, group, `*`) and bridge.
 * A second one is an error at its line naming the first, so no reader has to guess which one
 * wins. (Two group lines giving one user different VLANs can only be seen with the user's
 * groups: evaluate.ts's vlanFor reports them.)
 */
export function assemble(file: string, files: readonly string[], directives: readonly Directive[]): Policy {
  const access: AccessDirective[] = [];
  const taps = newLimits();
  const connections = newLimits();
  const queues = newLimits();
  const vlans: VlanDirective[] = [];
  const vlanOf = new Map<string, VlanDirective>();
  const macLocks: MacLockDirective[] = [];
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
      case 'max-connections':
      case 'max-queues': {
        const limits = d.kind === 'max-taps' ? taps : d.kind === 'max-queues' ? queues : connections;
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
      case 'vlan':
        for (const who of d.who) {
          const key = `${d.bridge} ${who.kind} ${who.kind === 'anyone' ? '' : who.name}`;
          const previous = vlanOf.get(key);
          if (previous !== undefined && previous.vid !== d.vid) {
            throw syntaxError(d.source.file, d.source.line,
              `${whoText(who)} on ${d.bridge} already has VLAN ${previous.vid} at ${at(previous.source)}`,
              'one VLAN for each user, group or * on one bridge');
          }
          if (previous === undefined) vlanOf.set(key, d);
        }
        vlans.push(d);
        break;
      case 'mac-lock':
        macLocks.push(d);
        break;
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
    defaultMaxQueues: queues.default, userMaxQueues: queues.users, groupMaxQueues: queues.groups,
    vlans, macLocks,
    ovsdb, auditLog,
  };
}
