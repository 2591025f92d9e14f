/**
 * `xkvm-helper audit`: which audit records match (user, bridge, since). Pure: the command
 * (cli/audit-command.ts) reads the file and prints each match (readable.ts).
 */
import { recordBridges, recordTime, recordUid, type ReadRecord } from './readable.js';

export interface AuditFilter {
  /** Records of this uid (the caller's, or the record's own `uid`). */
  readonly uid?: number | undefined;
  /** Records naming this bridge (asked for, made, or cleaned up). */
  readonly bridge?: string | undefined;
  /** Records at or after this time (ms since the epoch). */
  readonly since?: number | undefined;
}

const UNITS: Readonly<Record<string, number>> = {
  s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000,
};

/** The longest --since accepted (a year): beyond it, ask for the whole log. */
const MAX_SINCE_MS = 366 * 86_400_000;

/**
 * A duration like systemd's, in ms: `90s`, `15m`/`15min`, `2h`, `1d`, `1w`, or sums such as
 * `1h30m`; a bare number is seconds. Throws a RangeError saying what is expected otherwise.
 */
export function parseDuration(text: string): number {
  const parts = /^(?:\d{1,9}(?:s|sec|min|m|h|d|w)?)+$/.test(text) ? [...text.matchAll(/(\d{1,9})(s|sec|min|m|h|d|w)?/g)] : [];
  if (parts.length === 0 || (parts.length > 1 && parts.some((p) => p[2] === undefined))) {
    throw new RangeError(`--since ${JSON.stringify(text)} is not a duration: expected e.g. 90s, 15m, 2h, 1d, 1w or 1h30m`);
  }
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] ?? 's'] ?? 1000), 0);
  if (ms > MAX_SINCE_MS) throw new RangeError(`--since ${text} reaches back more than a year; leave --since out to see the whole log`);
  return ms;
}

export function matches(record: ReadRecord, filter: AuditFilter): boolean {
  if (filter.uid !== undefined && recordUid(record) !== filter.uid) return false;
  if (filter.bridge !== undefined && !recordBridges(record).includes(filter.bridge)) return false;
  if (filter.since !== undefined) {
    const time = recordTime(record);
    if (time === undefined || time < filter.since) return false;
  }
  return true;
}

