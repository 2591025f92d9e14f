/**
 * Removing taps by what the ledger recorded (records/ledger.ts): a tap is deleted when the device
 * of its name still has the ifindex the ledger gave it, whoever owns it now (an owner may have
 * given it away). A name that now has another ifindex is another device, never touched. What
 * could not be deleted, or is not in the ledger, is a failure: the caller audits it as an error,
 * never as "ok".
 */
import type { Nic } from '../../../shared/src/protocol/messages.js';
import type { NetOps } from '../requests/net-ops.js';
import type { LedgerEntry } from './ledger.js';

/** A tap to remove, and the ifindex the ledger recorded for it (undefined: not in the ledger). */
export interface Target {
  readonly nic: Nic;
  readonly ifindex: number | undefined;
}

export interface Removal {
  /** Deleted now. */
  readonly removed: Nic[];
  /** Already gone (no device of that name, or one with another ifindex: not ours, left alone). */
  readonly gone: Nic[];
  /** Still there: could not be deleted, or not in the ledger (left alone). */
  readonly failed: Array<Nic & { why: string }>;
  /** What went wrong, for the audit record; undefined when everything is gone. */
  readonly problem: string | undefined;
}

/** The targets for `nics` from `entries` (a tap's completed entry, if it has one). */
export function targetsFrom(nics: readonly Nic[], entries: readonly LedgerEntry[]): Target[] {
  const index = new Map<string, number>();
  for (const e of entries) if (e.ifindex !== undefined) index.set(e.tap, e.ifindex);
  return nics.map((nic) => ({ nic, ifindex: index.get(nic.tap) }));
}

/** The targets of ledger entries that have an ifindex. */
export function entryTargets(entries: readonly LedgerEntry[]): Target[] {
  return entries.map((e) => ({ nic: { bridge: e.bridge, tap: e.tap, type: e.type }, ifindex: e.ifindex }));
}

/**
 * Deletes each target's tap (and OVS port) that is still the device the ledger recorded; reports
 * what happened to each. Never throws for a failed deletion: that is in `failed` and `problem`.
 */
export async function removeTargets(net: NetOps, targets: readonly Target[], ovsdb: { ovsdb?: string }): Promise<Removal> {
  const doomed: Target[] = [];
  const gone: Nic[] = [];
  const failed: Array<Nic & { why: string }> = [];
  /** OVS ports of taps already gone: the port may outlive its device. */
  const ports: Nic[] = [];
  for (const t of targets) {
    const now = net.ifindex(t.nic.tap);
    if (t.ifindex === undefined) {
      if (now === undefined) gone.push(t.nic);
      else failed.push({ ...t.nic, why: 'not in the ledger, so left alone' });
    } else if (now === t.ifindex) {
      doomed.push(t);
    } else {
      gone.push(t.nic);
      if (now === undefined && t.nic.type === 'ovs') ports.push(t.nic);
    }
  }
  const problems: string[] = [];
  if (doomed.length > 0 || ports.length > 0) {
    try {
      // The ifindex goes along, so the net layer checks it again right before deleting.
      await net.deleteTaps([...doomed.map((t) => ({ ...t.nic, ifindex: t.ifindex })), ...ports], ovsdb);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  const removed: Nic[] = [];
  for (const t of doomed) {
    if (net.ifindex(t.nic.tap) === t.ifindex) failed.push({ ...t.nic, why: 'still there after deleting it' });
    else removed.push(t.nic);
  }
  if (failed.length > 0) problems.unshift(`could not remove ${failed.map((f) => `${f.tap} (${f.why})`).join(', ')}`);
  return { removed, gone, failed, problem: problems.length > 0 ? problems.join('; ') : undefined };
}
