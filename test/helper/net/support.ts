// Shared by the network-layer suites: run a worker job in a namespace, and look at the devices
// there. Every device check goes through `ip -j` and /sys/class/net of that namespace.
import { fileURLToPath } from 'node:url';
import { createNetns, type Netns } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import type { Job, Outcome } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

export function requireRoot(): void {
  if (process.geteuid?.() !== 0) throw new Error('these suites need root: they create namespaces, taps and bridges');
}

function parseOutcome(stdout: string, stderr: string, status: number | null): Outcome {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Outcome;
  } catch {
    throw new Error(`worker gave no result (exit ${String(status)}): ${stdout}\n${stderr}`);
  }
}

/** A test body run in a fresh namespace with these Linux bridges, destroyed afterwards. */
export function withNetns(bridges: string[], fn: (ns: Netns) => void | Promise<void>): () => Promise<void> {
  return async () => {
    requireRoot();
    const ns = createNetns({ bridges });
    try {
      await fn(ns);
    } finally {
      ns.destroy();
    }
  };
}

/** A test body run in a fresh namespace with a Linux bridge br0 and two OVS bridges ovsbr0, ovsbr1 (userspace), all removed afterwards. */
export function withOvs(fn: (ns: Netns, ovs: Ovs) => void): () => void {
  return () => {
    requireRoot();
    const ns = createNetns({ bridges: ['br0'] });
    let ovs: Ovs | undefined;
    try {
      ovs = startOvs(ns, { bridges: ['ovsbr0', 'ovsbr1'] });
      fn(ns, ovs);
    } finally {
      ovs?.stop();
      ns.destroy();
    }
  };
}

/** Runs one job in the namespace and returns its outcome. */
export function runJob(ns: Netns, job: Job): Outcome {
  const r = ns.exec([process.execPath, WORKER, JSON.stringify(job)], { timeoutMs: 60_000 });
  return parseOutcome(r.stdout, r.stderr, r.status);
}

/** Same, as a separate process running concurrently with others. */
export function spawnJob(ns: Netns, job: Job): Promise<Outcome> {
  const child = ns.spawn([process.execPath, WORKER, JSON.stringify(job)]);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => {
      try {
        resolve(parseOutcome(stdout, stderr, status));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** The value of a successful outcome; throws with the error otherwise. */
export function value<T>(o: Outcome): T {
  if (!o.ok) throw new Error(`expected success, got ${String(o.error.code)}: ${o.error.message}`);
  return o.value as T;
}

export interface Device {
  readonly name: string;
  readonly up: boolean;
  readonly master: string | undefined;
  readonly kind: string | undefined;
}

/** The devices in the namespace, from `ip -j -d link show`. */
export function devices(ns: Netns): Map<string, Device> {
  const list = JSON.parse(ns.ip('-j', '-d', 'link', 'show')) as {
    ifname: string; flags?: string[]; master?: string; linkinfo?: { info_kind?: string };
  }[];
  return new Map(list.map((d) => [d.ifname, {
    name: d.ifname, up: d.flags?.includes('UP') ?? false, master: d.master, kind: d.linkinfo?.info_kind,
  }]));
}

/** A tap's owner and group (numbers; -1 when unset), read from the namespace's /sys. */
export function tapOwner(ns: Netns, tap: string): { owner: number; group: number } {
  const r = ns.exec(['/usr/bin/cat', `/sys/class/net/${tap}/owner`, `/sys/class/net/${tap}/group`]);
  if (r.status !== 0) throw new Error(`cannot read owner of ${tap}: ${r.stderr}`);
  const [owner, group] = r.stdout.trim().split('\n').map(Number);
  return { owner: owner ?? NaN, group: group ?? NaN };
}

/** Names of the taps in the namespace whose names start with prefix. */
export function tapsLike(ns: Netns, prefix: string): string[] {
  return [...devices(ns).values()].filter((d) => d.kind === 'tun' && d.name.startsWith(prefix)).map((d) => d.name).sort();
}

/** How many calls ran a given program (by basename). */
export function spawned(o: Outcome, program: 'ip' | 'ovs-vsctl'): number {
  return o.calls.filter((c) => c.file.endsWith(`/${program}`)).length;
}

/** One deletion batch (-force) as the layer wrote it: the helper's group and the taps put in it, or plain `link del` lines. */
export interface Deletion {
  /** The interface group deleted at the end (`link del group G`); undefined for plain deletions. */
  readonly group: number | undefined;
  /** The taps put in the group (or deleted one by one), in order. */
  readonly taps: string[];
}

/**
 * The deletion batches an outcome ran. A group deletion must be `link set dev T group G` lines
 * and then `link del group G`, all with the same G; anything else in a -force batch throws.
 */
export function deletions(o: Outcome): Deletion[] {
  return o.calls.filter((c) => c.args.includes('-force')).map((c) => {
    const lines = (c.input ?? '').split('\n').filter((l) => l !== '');
    const last = /^link del group (\d+)$/.exec(lines[lines.length - 1] ?? '');
    if (last === null) {
      const taps = lines.map((l) => /^link del dev (\S+)$/.exec(l)?.[1]);
      if (taps.some((t) => t === undefined)) throw new Error(`not a deletion batch: ${JSON.stringify(lines)}`);
      return { group: undefined, taps: taps as string[] };
    }
    const group = Number(last[1]);
    const taps = lines.slice(0, -1).map((l) => {
      const m = /^link set dev (\S+) group (\d+)$/.exec(l);
      if (m === null || Number(m[2]) !== group) throw new Error(`not a group deletion: ${JSON.stringify(lines)}`);
      return m[1]!;
    });
    return { group, taps };
  });
}
