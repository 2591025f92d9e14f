import { dirname, resolve } from 'node:path';
import { syntaxError, type PolicyError } from './errors.js';
import type { Directive, RuleSource, Who } from './types.js';
import {
  isProblem, parseAbsolutePath, parseBridge, parseCount, parseOvsdb, parseVid, parseWho, type Problem,
} from './values.js';

const DIRECTIVES = ['allow', 'deny', 'max-taps', 'max-connections', 'max-queues', 'vlan', 'mac-lock', 'ovsdb', 'audit-log', 'include'] as const;

const USAGE: Record<(typeof DIRECTIVES)[number], string> = {
  allow: 'allow BRIDGE WHO... (WHO: a user name, @group or *)',
  deny: 'deny BRIDGE WHO... (WHO: a user name, @group or *)',
  'max-taps': 'max-taps N [WHO...]',
  'max-connections': 'max-connections N [WHO...]',
  'max-queues': 'max-queues N [WHO...] (N from 1 to 16)',
  vlan: 'vlan BRIDGE VID WHO... (VID from 1 to 4094; WHO: a user name, @group or *)',
  'mac-lock': 'mac-lock BRIDGE WHO... (WHO: a user name, @group or *)',
  ovsdb: 'ovsdb SOCKET',
  'audit-log': 'audit-log PATH',
  include: 'include PATH',
};

/**
 * Turn the words of one non-empty line into a directive, or throw a POLICY_SYNTAX error naming
 * `source.file:source.line`. An include's path is resolved against the including file's directory.
 */
export function parseDirective(words: readonly string[], source: RuleSource, depth: number): Directive {
  const [keyword = '', ...args] = words;
  const error = (p: Problem): PolicyError => syntaxError(source.file, source.line, p.problem, p.expected);
  const take = <T>(value: T | Problem): T => {
    if (isProblem(value)) throw error(value);
    return value;
  };
  const single = (name: (typeof DIRECTIVES)[number], what: string): string => {
    const [value, extra] = args;
    if (value === undefined) throw error({ problem: `${name} needs a ${what}`, expected: USAGE[name] });
    if (extra !== undefined) {
      throw error({
        problem: `unexpected "${extra}" after the ${what}`,
        expected: `${USAGE[name]} and nothing else (a comment starts with " #")`,
      });
    }
    return value;
  };
  const whoList = (list: readonly string[]): Who[] => list.map((w) => take(parseWho(w)));

  switch (keyword) {
    case 'allow':
    case 'deny': {
      const [bridge, ...who] = args;
      if (bridge === undefined) {
        throw error({ problem: `${keyword} needs a bridge and at least one WHO`, expected: USAGE[keyword] });
      }
      const parsedBridge = take(parseBridge(bridge));
      if (who.length === 0) throw error({ problem: `${keyword} ${bridge} names no one`, expected: USAGE[keyword] });
      return { kind: keyword, bridge: parsedBridge, who: whoList(who), source };
    }
    case 'max-taps':
    case 'max-connections':
    case 'max-queues': {
      const [count, ...who] = args;
      if (count === undefined) throw error({ problem: `${keyword} needs a number`, expected: USAGE[keyword] });
      const of = keyword === 'max-taps' ? 'taps' : keyword === 'max-queues' ? 'queues' : 'connections';
      return { kind: keyword, limit: take(parseCount(count, of)), who: whoList(who), source };
    }
    case 'vlan': {
      const [bridge, vid, ...who] = args;
      if (bridge === undefined || vid === undefined) {
        throw error({ problem: 'vlan needs a bridge, a VLAN id and at least one WHO', expected: USAGE.vlan });
      }
      if (bridge === '*') {
        throw error({ problem: 'vlan needs one bridge, not * (VLAN ids are per bridge)', expected: USAGE.vlan });
      }
      const parsedBridge = take(parseBridge(bridge));
      const parsedVid = take(parseVid(vid));
      if (who.length === 0) throw error({ problem: `vlan ${bridge} ${vid} names no one`, expected: USAGE.vlan });
      return { kind: 'vlan', bridge: parsedBridge, vid: parsedVid, who: whoList(who), source };
    }
    case 'mac-lock': {
      const [bridge, ...who] = args;
      if (bridge === undefined) throw error({ problem: 'mac-lock needs a bridge and at least one WHO', expected: USAGE['mac-lock'] });
      const parsedBridge = take(parseBridge(bridge));
      if (who.length === 0) throw error({ problem: `mac-lock ${bridge} names no one`, expected: USAGE['mac-lock'] });
      return { kind: 'mac-lock', bridge: parsedBridge, who: whoList(who), source };
    }
    case 'ovsdb':
      return { kind: 'ovsdb', socket: take(parseOvsdb(single('ovsdb', 'socket'))), source };
    case 'audit-log':
      return { kind: 'audit-log', path: take(parseAbsolutePath(single('audit-log', 'path'))), source };
    case 'include':
      return { kind: 'include', path: resolve(dirname(source.file), single('include', 'path')), depth, source };
    default:
      throw error({
        problem: `unknown directive "${keyword}"`,
        expected: `one of ${DIRECTIVES.join(', ')} (or a # comment)`,
      });
  }
}
