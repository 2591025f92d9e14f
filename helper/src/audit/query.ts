/**
 * `xkvm-helper audit`: which audit records match (user, bridge, since) and how each reads as one
 * line. Pure: the command (cli/audit-command.ts) reads the file and prints. Records are the JSON
 * lines audit.ts writes; anything in them came from callers at some point, so the readable form
 * escapes every control character (a record can never move the terminal's cursor or fake a line).
 */
/** One record as read back: any JSON object (fields are checked where used, never trusted). */
export type ReadRecord = Readonly<Record<string, unknown>>;

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

function object(value: unknown): ReadRecord | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as ReadRecord : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The uid a record is about: its caller's, else its own `uid`. */
function recordUid(record: ReadRecord): number | undefined {
  const uid = object(record['caller'])?.['uid'] ?? record['uid'];
  return typeof uid === 'number' && Number.isInteger(uid) ? uid : undefined;
}

function recordUser(record: ReadRecord): string | undefined {
  return text(object(record['caller'])?.['user']) ?? text(record['user']);
}

/** Every bridge a record names: asked for, made (`taps`, `left`), or cleaned up (`ports`). */
function recordBridges(record: ReadRecord): string[] {
  const found = new Set<string>();
  const request = object(record['request']);
  for (const list of [request?.['bridges'], request?.['ports'], request?.['nics'], record['taps'], record['left'], record['ports'], record['removed']]) {
    if (!Array.isArray(list)) continue;
    for (const item of list as unknown[]) {
      const bridge = typeof item === 'string' ? item : text(object(item)?.['bridge']);
      if (bridge !== undefined) found.add(bridge);
    }
  }
  return [...found];
}

function recordTime(record: ReadRecord): number | undefined {
  const time = text(record['time']);
  const ms = time === undefined ? NaN : Date.parse(time);
  return Number.isNaN(ms) ? undefined : ms;
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

/** `s` with every control character (C0, DEL, C1) and backslash shown as an escape. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\\\u2028\u2029]/g, (c) => (c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** What a request's taps were: `tap:bridge` for each made or named. */
function tapsOf(record: ReadRecord): string {
  const taps = record['taps'] ?? record['removed'];
  if (!Array.isArray(taps)) return '';
  return (taps as unknown[]).flatMap((t) => {
    const tap = text(object(t)?.['tap']);
    return tap === undefined ? [] : [tap];
  }).join(',');
}

/**
 * One readable line: time, user (name and uid), what happened (the op, or the event), the
 * bridges, the decision where one was made, the result (with the error code), the taps, and a
 * refusal's message.
 */
export function formatRecord(record: ReadRecord): string {
  const uid = recordUid(record);
  const name = recordUser(record);
  const who = name === undefined ? (uid === undefined ? '-' : `uid ${uid}`) : `${name}(${uid ?? '?'})`;
  const what = text(record['op']) ?? text(record['event']) ?? '?';
  const bridges = recordBridges(record).join(',') || '-';
  const decision = text(record['decision']) ?? '-';
  const code = text(record['code']);
  const result = `${text(record['result']) ?? '-'}${code === undefined ? '' : ` ${code}`}`;
  const taps = tapsOf(record);
  const message = text(record['message']);
  const fields = [text(record['time']) ?? '-', who, what, bridges, decision, result];
  if (taps !== '') fields.push(taps);
  if (message !== undefined) fields.push(`"${message}"`);
  return printable(fields.join(' '));
}
