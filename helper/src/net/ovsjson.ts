import { NetError } from './errors.js';

/*
 * ovs-vsctl --format=json prints one object per command, one per line:
 *   {"headings":["_uuid","name",…],"data":[[["uuid","…"],"tap0",["map",[["k","v"]]]],…]}
 * Atoms are plain JSON strings/numbers/booleans, ["uuid",U] or ["named-uuid",U]; a set is
 * ["set",[atom…]] or, with exactly one member, the bare atom; a map is ["map",[[k,v]…]].
 */

export type Row = ReadonlyMap<string, unknown>;

function bad(what: string): NetError {
  return new NetError('SYSTEM_ERROR', `unexpected ovs-vsctl output: ${what}`);
}

/** The tables printed by a run of several commands, in command order. */
export function parseTables(stdout: string): Row[][] {
  return stdout.split('\n').filter((l) => l.trim() !== '').map((line) => {
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch (e) {
      throw new NetError('SYSTEM_ERROR', 'unexpected ovs-vsctl output: not JSON', { cause: e });
    }
    if (typeof doc !== 'object' || doc === null) throw bad('not an object');
    const { headings, data } = doc as { headings?: unknown; data?: unknown };
    if (!Array.isArray(headings) || !Array.isArray(data) || !headings.every((h) => typeof h === 'string')) {
      throw bad('no headings/data');
    }
    return data.map((cells: unknown) => {
      if (!Array.isArray(cells) || cells.length !== headings.length) throw bad('row width');
      return new Map(headings.map((h: string, i) => [h, cells[i] as unknown]));
    });
  });
}

export function str(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw bad(`${what} is not a string`);
}

export function uuid(value: unknown, what: string): string {
  if (Array.isArray(value) && value.length === 2 && value[0] === 'uuid' && typeof value[1] === 'string') return value[1];
  throw bad(`${what} is not a uuid`);
}

/** A set column's members (raw atoms). */
export function members(value: unknown): unknown[] {
  if (Array.isArray(value) && value[0] === 'set') {
    if (!Array.isArray(value[1])) throw bad('malformed set');
    return value[1] as unknown[];
  }
  return [value];
}

export function strMap(value: unknown, what: string): Map<string, string> {
  if (!Array.isArray(value) || value[0] !== 'map' || !Array.isArray(value[1])) throw bad(`${what} is not a map`);
  const out = new Map<string, string>();
  for (const pair of value[1] as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2) throw bad(`${what} has a malformed pair`);
    out.set(str(pair[0], what), str(pair[1], what));
  }
  return out;
}
