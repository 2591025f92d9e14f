// Runs one network-layer call inside a network namespace and prints the outcome as JSON:
//
//   ip netns exec NS node worker.js '{"op":"create","bridges":["br0"],"owner":{"uid":1,"gid":1}}'
//
// (`ip netns exec` gives it the namespace's devices and /sys/class/net.) It always runs programs
// and ip batches the way the helper does (batches without -force through the long-lived ip),
// wrapped to record every program and batch; a job may also fix the first tap names
// drawn (`names`) and run one command just before the first ip batch or OVS port addition
// (`interpose`), to make a step fail for real (calls record only what the layer ran). Output: {ok, value | error, calls, ms}.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  classifyBridges, createTapsMany, type BatchOptions, deleteTaps, ipTool, ovsCleanup, randomTapName, resolveDeps, IP_TIMEOUT_MS, parseFailedLines,
  ifindexOf, tapInfo, type CreateJob, type DeleteNic, type IpBatch, type NetDeps, type Nic, type PortRef, type Runner,
  type VlanFiltering, bridgeTool,
} from '../../../helper/src/net/index.js';
import { deleteGroup } from '../../../helper/src/net/groupdelete.js';

interface Call {
  readonly file: string;
  readonly args: readonly string[];
  readonly input?: string;
}

export interface Job {
  readonly op: 'kinds' | 'create' | 'create-steps' | 'create-many' | 'delete' | 'delete-together' | 'delete-stray-lo' | 'cleanup' | 'tapinfo' | 'ifindex' | 'bench';
  /** for create-steps: run the commands, then make `bridges` (each step in the same process: the same long-lived ip) */
  readonly steps?: { commands?: string[][] }[];
  /** for create-many */
  readonly jobs?: CreateJob[];
  /** for create-many: record each beforeCreate call among the calls (file `beforeCreate`, args `JOB:SLOT:BRIDGE:KIND:TAP`) */
  readonly announce?: boolean;
  /** for create-many: answer {outcomes, tunFds}, tunFds the taps of the /dev/net/tun fds still open when the call returned */
  readonly tunFds?: boolean;
  readonly bridges?: string[];
  /** for create: queues per tap (in the order of bridges) */
  readonly queues?: unknown[];
  /** for create: the VLAN of each tap (in the order of bridges) */
  readonly vlans?: unknown[];
  /** stand-in for every Linux bridge's VLAN filtering (a kernel that has it); /sys when absent */
  readonly filtering?: VlanFiltering;
  /** stand-in for bridge(8): not run, recorded, answered with this */
  readonly bridgeProgram?: { readonly exitCode: number; readonly stderr: string };
  /** for create: the MAC each tap is locked to (in the order of bridges; null, as JSON has no undefined: not locked) */
  readonly macs?: (string | null | undefined)[];
  readonly owner?: { uid: number; gid: number };
  readonly ovsdb?: string;
  readonly session?: string;
  readonly nics?: DeleteNic[];
  /** for delete-together: one deleteTaps call each; the first alone, the others while its deletion runs */
  readonly together?: DeleteNic[][];
  readonly ports?: PortRef[];
  readonly uid?: number;
  readonly name?: string;
  readonly rounds?: number;
  /** tap names the generator yields first (then random ones) */
  readonly names?: string[];
  /** run batches as one process each, as before the long-lived ip (bench: to compare) */
  readonly spawnBatches?: boolean;
  /** run these commands once, just before the first call that is an ip batch / an OVS add-port */
  readonly interpose?: { readonly before: 'ip-batch' | 'add-port' | 'lock'; readonly commands: string[][] };
}

export type Outcome =
  | { ok: true; value: unknown; calls: Call[]; ms: number }
  | { ok: false; error: { name: string; code: unknown; message: string }; calls: Call[]; ms: number };

/** What the helper runs programs and ip batches with (no stand-ins given). */
const real = resolveDeps(undefined);

function batchArgs(opts: BatchOptions): string[] {
  return opts.force === true ? ['-force', '-batch', '-'] : ['-batch', '-'];
}

/** One `ip [-force] -batch -` process per batch: how the helper ran batches before its long-lived ips. */
const spawnedBatch: IpBatch = async (lines, opts) => {
  const r = await real.run({ file: ipTool(), args: batchArgs(opts), input: `${lines.join('\n')}\n`, timeoutMs: IP_TIMEOUT_MS });
  const failedLines = parseFailedLines(r.stderr);
  return { ok: r.exitCode === 0 && failedLines.length === 0, failedLines, stderr: r.stderr };
};

function deps(job: Job, calls: Call[]): NetDeps {
  let interposed = false;
  const interpose = (before: 'ip-batch' | 'add-port' | 'lock'): void => {
    if (job.interpose === undefined || interposed || job.interpose.before !== before) return;
    interposed = true;
    for (const [file, ...args] of job.interpose.commands) {
      const r = spawnSync(file ?? '/bin/false', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`interposed ${String(file)} ${args.join(' ')} failed: ${r.stderr}`);
    }
  };
  const run: Runner = async (req) => {
    calls.push({ file: req.file, args: [...req.args], ...(req.input === undefined ? {} : { input: req.input }) });
    if (req.args.includes('add-port')) interpose('add-port');
    // mac-lock: bridge(8) locking ports, ovs-ofctl adding flows
    if (req.input?.includes(' locked on') === true || req.args.includes('add-flows')) interpose('lock');
    if (job.bridgeProgram !== undefined && req.file === bridgeTool()) return { ...job.bridgeProgram, stdout: '' };
    return real.run(req);
  };
  // Batches are recorded as the `ip [-force] -batch -` run they stand for, wherever they run.
  const batch: IpBatch = async (lines, opts) => {
    calls.push({ file: ipTool(), args: batchArgs(opts), input: `${lines.join('\n')}\n` });
    interpose('ip-batch');
    return (job.spawnBatches === true ? spawnedBatch : real.batch)(lines, opts);
  };
  const queue = [...(job.names ?? [])];
  const filtering = job.filtering;
  return {
    run, batch, tapName: () => queue.shift() ?? randomTapName(),
    vlanFiltering: filtering === undefined ? real.vlanFiltering : () => filtering, openTap: real.openTap,
  };
}

/** One request through createTapsMany (as the helper makes it): its nics, or its error thrown. */
async function createOne(request: CreateJob, opts: { ovsdb?: string | undefined; deps: NetDeps }): Promise<Nic[]> {
  const [outcome] = await createTapsMany([request], opts);
  if (outcome === undefined) throw new Error('createTapsMany gave no outcome');
  if ('error' in outcome) throw outcome.error;
  return outcome.nics;
}

async function perform(job: Job, d: NetDeps, calls: Call[]): Promise<unknown> {
  const base = { ovsdb: job.ovsdb, deps: d };
  switch (job.op) {
    case 'kinds': {
      const classes = await classifyBridges(job.bridges ?? [], base);
      return { kinds: Object.fromEntries(classes.kinds), missing: [...classes.missing] };
    }
    case 'create': return createOne({ bridges: job.bridges ?? [], owner: job.owner ?? { uid: -1, gid: -1 }, session: job.session, queues: job.queues as number[] | undefined, vlans: job.vlans as (number | undefined)[] | undefined, macs: job.macs?.map((m) => m ?? undefined) }, base);
    case 'create-steps': {
      const made: unknown[] = [];
      for (const step of job.steps ?? []) {
        runCommands(step.commands ?? []);
        try {
          made.push(await createOne({ bridges: job.bridges ?? [], owner: job.owner ?? { uid: -1, gid: -1 } }, base));
        } catch (e) {
          made.push({ error: { code: (e as { code?: unknown }).code, message: (e as Error).message } });
        }
      }
      return made;
    }
    case 'create-many': {
      const beforeCreate = job.announce === true
        ? (taps: readonly { job: number; slot: number; bridge: string; kind: string; tap: string }[]): void => {
          calls.push({ file: 'beforeCreate', args: taps.map((t) => `${t.job}:${t.slot}:${t.bridge}:${t.kind}:${t.tap}`) });
        }
        : undefined;
      const outcomes = (await createTapsMany(job.jobs ?? [], { ...base, beforeCreate })).map((o) => ('error' in o
        ? { error: { code: o.error.code, message: o.error.message }, left: o.left ?? [] }
        : o));
      if (job.tunFds !== true) return outcomes;
      // Fd jobs: the /dev/net/tun fds this process still has open, the tap each is, when the call returns.
      const tunFds = readdirSync('/proc/self/fd').flatMap((fd) => {
        try {
          if (readlinkSync(`/proc/self/fd/${fd}`) !== '/dev/net/tun') return [];
          return [/^iff:\s*(\S+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '?'];
        } catch {
          return [];
        }
      });
      return { outcomes, tunFds };
    }
    case 'delete': return deleteTaps(job.nics ?? [], { ...base, owner: job.uid });
    case 'delete-together': {
      const [first, ...others] = job.together ?? [];
      const settle = (p: Promise<unknown>): Promise<unknown> => p.then((v) => v, (e: Error) => ({ error: { code: (e as { code?: unknown }).code, message: e.message } }));
      const calls = [settle(deleteTaps(first ?? [], base))];
      // The first deletion starts on the next turn of the event loop and is then waiting for ip.
      await new Promise((resolve) => setImmediate(resolve));
      calls.push(...others.map((nics) => settle(deleteTaps(nics, base))));
      return Promise.all(calls);
    }
    case 'delete-stray-lo': {
      const group = deleteGroup();
      runCommands([[ipTool(), 'link', 'set', 'lo', 'group', String(group)]]);
      try {
        return { result: await deleteTaps(job.nics ?? [], base), group };
      } finally {
        runCommands([[ipTool(), 'link', 'set', 'lo', 'group', '0']]);
      }
    }
    case 'cleanup': return ovsCleanup(job.ports ?? [], { uid: job.uid ?? -1 }, base);
    case 'tapinfo': return tapInfo(job.name ?? '');
    case 'ifindex': return ifindexOf(job.name ?? '') ?? null;
    case 'bench': return bench(job, d);
  }
}

function runCommands(commands: readonly string[][]): void {
  for (const [file, ...args] of commands) {
    const r = spawnSync(file ?? '/bin/false', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${String(file)} ${args.join(' ')} failed: ${r.stderr}`);
  }
}

/** Median ms of creating (one request) and deleting taps, after one warm-up round, and programs and batches per request. */
async function bench(job: Job, d: NetDeps): Promise<unknown> {
  const createMs: number[] = [];
  const deleteMs: number[] = [];
  const counts = { programs: 0, batches: 0 };
  const counting: NetDeps = {
    ...d,
    run: async (req) => { counts.programs += 1; return d.run(req); },
    batch: async (lines, opts) => { counts.batches += 1; return d.batch(lines, opts); },
  };
  let create = { ...counts };
  let remove = { ...counts };
  const rounds = job.rounds ?? 10;
  for (let i = 0; i <= rounds; i += 1) {
    counts.programs = 0;
    counts.batches = 0;
    const t0 = performance.now();
    const nics = await createOne({ bridges: job.bridges ?? [], owner: job.owner ?? { uid: 0, gid: 0 }, session: 'bench' },
      { ovsdb: job.ovsdb, deps: counting });
    const t1 = performance.now();
    create = { ...counts };
    await deleteTaps(nics, { ovsdb: job.ovsdb, deps: counting });
    const t2 = performance.now();
    remove = { programs: counts.programs - create.programs, batches: counts.batches - create.batches };
    if (i === 0) continue; // warm-up
    createMs.push(t1 - t0);
    deleteMs.push(t2 - t1);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  return { createMs: median(createMs), deleteMs: median(deleteMs), create, remove, rounds };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as Job;
  const calls: Call[] = [];
  const t0 = performance.now();
  let out: Outcome;
  try {
    const value = await perform(job, deps(job, calls), calls);
    out = { ok: true, value, calls, ms: performance.now() - t0 };
  } catch (e) {
    const err = e as { name?: unknown; code?: unknown; message?: unknown };
    out = { ok: false, error: { name: String(err.name), code: err.code, message: String(err.message) }, calls, ms: performance.now() - t0 };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await main();
