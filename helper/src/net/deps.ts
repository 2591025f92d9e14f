import { openTap, type OpenedTap } from '../native/fd-handoff.js';
import { IpCoprocess } from './ipcoprocess.js';
import type { IpBatch } from './ipbatch.js';
import { systemRunner, type Runner } from './runner.js';
import { randomTapName } from './tapname.js';
import { vlanFilteringOf, type VlanFiltering } from './vlan.js';

/**
 * What the operations need from the outside world. Production uses the defaults; tests pass
 * replacements through `NetOptions.deps` to count the processes and batches a request runs, to
 * interpose a failure between two steps, or to force a name collision. Nothing else sets it.
 */
export interface NetDeps {
  /** Runs one program (see runner.ts). */
  readonly run: Runner;
  /** Runs one ip batch (see ipbatch.ts); lines are checked before they get here. */
  readonly batch: IpBatch;
  /** A fresh candidate tap name; it is validated like any other name before use. */
  readonly tapName: () => string;
  /** A Linux bridge's VLAN filtering (vlan.ts: read from /sys; a stand-in shows a kernel that has it). */
  readonly vlanFiltering: (bridge: string) => VlanFiltering;
  /** Opens a tap for fd handoff (native/fd-handoff.ts openTap: not persistent, IFF_TUN_EXCL: BAD_NAME when the name exists). */
  readonly openTap: (name: string, queues: number, uid: number) => OpenedTap;
}

/**
 * The helper's long-lived ips (see ipcoprocess.ts): one creates taps, one deletes them, so that
 * a creation never waits behind a deletion's ~30 ms in the kernel queued on the same pipe.
 */
const ipCoprocesses = Object.freeze({ create: new IpCoprocess(), remove: new IpCoprocess() });

/** Batches without -force (creating taps) and with it (deleting: go on past a missing tap). */
const systemBatch: IpBatch = (lines, opts) => (opts.force === true
  ? ipCoprocesses.remove.runForced(lines)
  : ipCoprocesses.create.run(lines, opts));

const defaultDeps: NetDeps = Object.freeze({ run: systemRunner, batch: systemBatch, tapName: randomTapName, vlanFiltering: vlanFilteringOf, openTap });

/** Fills in the defaults. */
export function resolveDeps(deps: Partial<NetDeps> | undefined): NetDeps {
  if (deps === undefined) return defaultDeps;
  return {
    run: deps.run ?? defaultDeps.run, batch: deps.batch ?? defaultDeps.batch, tapName: deps.tapName ?? defaultDeps.tapName,
    vlanFiltering: deps.vlanFiltering ?? defaultDeps.vlanFiltering, openTap: deps.openTap ?? defaultDeps.openTap,
  };
}
