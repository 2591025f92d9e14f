/**
 * The helper's BAD_REQUEST refusal of a make-nics request that leaves out the guest's MAC on a
 * bridge where mac-lock applies to the caller: one message, written here and read here, so the
 * helper and the client cannot drift apart. The message is for a person (it names mac-lock, each
 * bridge with its policy line, and the nics that lack a "mac"); the client also reads it to give
 * those nics a MAC of its own choosing and ask once more. The parser accepts exactly what the
 * formatter writes, nothing else: anything it does not recognize is shown to the user as it is.
 *
 *   taps of alice are under mac-lock on br0 (/etc/xkvm/helper.conf:3), so nics[0] must carry the guest's "mac"
 *   taps of alice are under mac-lock on br0 (/etc/xkvm/helper.conf:3), br1 (/etc/xkvm/helper.conf:4), so nics[0], nics[2] must carry the guest's "mac"
 */
import { isValidIfname } from './names.js';

/** One nic of the request without a "mac", on a bridge locked by the policy line `rule` ("FILE:LINE"). */
interface MacLockMissing {
  index: number;
  bridge: string;
  rule: string;
}

export interface MacLockRefusal {
  user: string;
  /** In ascending index order; each bridge always with the same rule. */
  missing: MacLockMissing[];
}

/** The largest nics index the parser reads (a request has far fewer nics). */
const MAX_INDEX = 9999;
const TAIL = ' must carry the guest\'s "mac"';

/** The refusal for `missing` (at least one, as #grants collects them: ascending indices). */
export function formatMacLockRefusal(refusal: MacLockRefusal): string {
  const rules = new Map<string, string>();
  for (const m of refusal.missing) if (!rules.has(m.bridge)) rules.set(m.bridge, m.rule);
  const where = [...rules].map(([bridge, rule]) => `${bridge} (${rule})`).join(', ');
  const which = refusal.missing.map((m) => `nics[${m.index}]`).join(', ');
  return `taps of ${refusal.user} are under mac-lock on ${where}, so ${which}${TAIL}`;
}

const FRAME = /^taps of ([!-~]+) are under mac-lock on (.+), so (nics\[(?:0|[1-9][0-9]{0,3})\](?:, nics\[(?:0|[1-9][0-9]{0,3})\])*) must carry the guest's "mac"$/;
/** One `BRIDGE (FILE:LINE)` of the list, read where the last one ended (sticky). */
const PLACE = /([A-Za-z0-9_][A-Za-z0-9_.-]{0,14}) \(([^()\n]+:[1-9][0-9]*)\)(?:, (?=.)|$)/y;

/**
 * The refusal of `request` (the nics as they were sent) that `message` is, when it is exactly
 * what formatMacLockRefusal writes for nics of that request without a "mac" (ascending, distinct
 * indices; each bridge named once, with one rule); otherwise undefined.
 */
export function parseMacLockRefusal(message: string, request: ReadonlyArray<{ bridge: string; mac?: string }>): MacLockRefusal | undefined {
  const frame = FRAME.exec(message);
  if (frame === null) return undefined;
  const [, user, where, which] = frame as unknown as [string, string, string, string];
  const rules = new Map<string, string>();
  PLACE.lastIndex = 0;
  while (PLACE.lastIndex < where.length) {
    const place = PLACE.exec(where);
    if (place === null || !isValidIfname(place[1]) || rules.has(place[1])) return undefined;
    rules.set(place[1], place[2]!);
  }
  const missing: MacLockMissing[] = [];
  for (const text of which.split(', ')) {
    const index = Number(text.slice('nics['.length, -1));
    const nic = request[index];
    const previous = missing[missing.length - 1];
    if (nic === undefined || nic.mac !== undefined || index > MAX_INDEX || (previous !== undefined && index <= previous.index)) return undefined;
    const rule = rules.get(nic.bridge);
    if (rule === undefined) return undefined;
    missing.push({ index, bridge: nic.bridge, rule });
  }
  const refusal = { user, missing };
  return formatMacLockRefusal(refusal) === message ? refusal : undefined;
}
