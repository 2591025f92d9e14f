/**
 * Audit records read back (from the audit-log file, or as written): who, which bridges and taps,
 * and one readable line. Records are JSON objects whose fields came from callers at some point,
 * so every field is checked where used and never trusted, and the readable form escapes every
 * control character (a record can never move a terminal's cursor or fake a line).
 */

/** One record as read back: any JSON object. */
export type ReadRecord = Readonly<Record<string, unknown>>;

function object(value: unknown): ReadRecord | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as ReadRecord : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The uid a record is about: its caller's, else its own `uid`. */
export function recordUid(record: ReadRecord): number | undefined {
  const uid = object(record['caller'])?.['uid'] ?? record['uid'];
  return typeof uid === 'number' && Number.isInteger(uid) ? uid : undefined;
}

function recordUser(record: ReadRecord): string | undefined {
  return text(object(record['caller'])?.['user']) ?? text(record['user']);
}

/** Every bridge a record names: asked for, made (`taps`, `left`), or cleaned up (`ports`). */
export function recordBridges(record: ReadRecord): string[] {
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

export function recordTime(record: ReadRecord): number | undefined {
  const time = text(record['time']);
  const ms = time === undefined ? NaN : Date.parse(time);
  return Number.isNaN(ms) ? undefined : ms;
}

/** `s` with every control character (C0, DEL, C1) and backslash shown as an escape. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\\\u2028\u2029]/g, (c) => (c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** The taps a record names (made, removed, or left behind). */
export function recordTaps(record: ReadRecord): string[] {
  const found: string[] = [];
  for (const list of [record['taps'], record['removed'], record['left']]) {
    if (!Array.isArray(list)) continue;
    for (const item of list as unknown[]) {
      const tap = text(object(item)?.['tap']);
      if (tap !== undefined && !found.includes(tap)) found.push(tap);
    }
  }
  return found;
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
  const taps = recordTaps(record).join(',');
  const message = text(record['message']);
  const fields = [text(record['time']) ?? '-', who, what, bridges, decision, result];
  if (taps !== '') fields.push(taps);
  if (message !== undefined) fields.push(`"${message}"`);
  return printable(fields.join(' '));
}
