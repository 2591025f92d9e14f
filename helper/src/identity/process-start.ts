/**
 * A process's start time (field 22 of /proc/PID/stat, clock ticks since boot). Sessions are
 * keyed by (pid, start time) so that a pid reused by a later process cannot pass for the
 * client that opened the session.
 */
import { readFileSync } from 'node:fs';

/** Fields counted from 1 as in proc(5); after the comm field (2) the next one is state (3). */
const STARTTIME_FIELD = 22;
const FIRST_FIELD_AFTER_COMM = 3;

/**
 * The starttime field of one /proc/PID/stat line. The comm field is in parentheses and may
 * itself hold spaces, parentheses and newlines, so fields are counted from the LAST ')'.
 * Throws on a line that does not have the expected shape.
 * @internal The helper calls processStartTime(pid); the tests feed this comm fields no real
 * process of theirs has.
 */
export function parseStatStartTime(stat: string): bigint {
  const close = stat.lastIndexOf(')');
  if (close < 0 || stat.indexOf('(') < 0 || stat.indexOf('(') > close) {
    throw new Error('malformed /proc/PID/stat line: no "(comm)" field');
  }
  const fields = stat.slice(close + 1).trim().split(/ +/);
  const value = fields[STARTTIME_FIELD - FIRST_FIELD_AFTER_COMM];
  if (value === undefined || !/^\d+$/.test(value)) {
    throw new Error(`malformed /proc/PID/stat line: field ${STARTTIME_FIELD} (starttime) is ${JSON.stringify(value)}`);
  }
  return BigInt(value);
}

/** The start time of process `pid`, or undefined when no such process exists (any more). */
export function processStartTime(pid: number): bigint | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new RangeError(`not a process id: ${String(pid)}`);
  let stat: string;
  try {
    // latin1: the comm field is arbitrary bytes; only ASCII matters to the parse.
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (error) {
    const code: unknown = typeof error === 'object' && error !== null ? Reflect.get(error, 'code') : undefined;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw error;
  }
  return parseStatStartTime(stat);
}
