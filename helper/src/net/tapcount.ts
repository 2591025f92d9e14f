import { deviceNames, ownerOfTap } from './sysfs.js';

/** How long an owner read from /sys is trusted before it is read again. */
const OWNER_RECHECK_MS = 10_000;

/** The owner (or "not an owned tap": undefined) of each device name, and when it was read. */
const seen = new Map<string, { readonly owner: number | undefined; readonly at: number }>();

/**
 * How many tap devices each uid owns right now (every helper's taps count, persistent ones too),
 * leaving out the names in `except`. One directory read of /sys/class/net a call; a device's
 * owner is read when its name is first seen and again after OWNER_RECHECK_MS (reading it for
 * every device every time cost ~9 ms with 300 taps). So a device replaced by another of the
 * same name with another owner (only root can) may be counted for the old owner for up to that
 * long; names gone from /sys are forgotten at once.
 */
export function tapCounts(except: ReadonlySet<string> = new Set(), now: number = Date.now()): Map<number, number> {
  const names = deviceNames();
  const present = new Set(names);
  for (const name of seen.keys()) if (!present.has(name)) seen.delete(name);
  const counts = new Map<number, number>();
  for (const name of names) {
    if (except.has(name)) continue;
    let entry = seen.get(name);
    if (entry === undefined || now - entry.at > OWNER_RECHECK_MS) {
      entry = { owner: ownerOfTap(name), at: now };
      seen.set(name, entry);
    }
    if (entry.owner !== undefined) counts.set(entry.owner, (counts.get(entry.owner) ?? 0) + 1);
  }
  return counts;
}
