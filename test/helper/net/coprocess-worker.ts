// Runs one IpCoprocess scenario inside a network namespace and prints what happened as JSON:
//
//   ip netns exec NS node coprocess-worker.js '{"batches":[["tuntap add dev c1 mode tap"]], …}'
//
// Between batches it can kill or stop the running ip (`between`), so the tests see what the
// helper would see when its ip dies or hangs. It never calls close(): the process must exit by
// itself with an idle ip still running (that ip is not allowed to keep the helper alive).
import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { IpCoprocess } from '../../../helper/src/net/index.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';

export interface Scenario {
  readonly batches: string[][];
  /** After batch i (index), do this to the running ip. */
  readonly between?: Record<string, 'kill' | 'stop'>;
  readonly timeoutMs?: number;
  readonly file?: string;
  /** Run the batches with -force's outcome (runForced). */
  readonly forced?: boolean;
  /**
   * Batch i (index) is run with these `devices` (name → the ifindex it must mean; 'now': the
   * index of the device of that name just before the batch) and `fresh`.
   */
  readonly options?: Record<string, { devices?: Record<string, number | 'now'>; fresh?: boolean }>;
  /** Before batch i (index), run these commands (absolute paths). */
  readonly before?: Record<string, string[][]>;
}

interface BatchResult {
  readonly ok?: boolean;
  readonly failedLines?: readonly number[];
  readonly stderr?: string;
  readonly error?: { name: string; code: unknown; message: string };
  readonly pid?: number;
}

export interface ScenarioResult {
  readonly results: BatchResult[];
  readonly starts: number;
  /** The ip left running at the end, its environment and working directory. */
  readonly idle?: { pid: number; environ: string[]; cwd: string };
}

const scenario = JSON.parse(process.argv[2] ?? '{}') as Scenario;
const file = scenario.file;
const ip = new IpCoprocess({ ...(file === undefined ? {} : { file: () => file }), ...(scenario.timeoutMs === undefined ? {} : { timeoutMs: scenario.timeoutMs }) });
const results: BatchResult[] = [];
for (const [i, lines] of scenario.batches.entries()) {
  for (const [file, ...args] of scenario.before?.[String(i)] ?? []) {
    const r = spawnSync(file ?? '/bin/false', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${String(file)} ${args.join(' ')} failed: ${r.stderr}`);
  }
  const given = scenario.options?.[String(i)];
  const opts = {
    ...(given?.devices === undefined ? {} : {
      devices: new Map(Object.entries(given.devices).map(([name, index]) => [name,
        index === 'now' ? Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim()) : index])),
    }),
    ...(given?.fresh === undefined ? {} : { fresh: given.fresh }),
  };
  try {
    const outcome = await (scenario.forced === true ? ip.runForced(lines) : ip.run(lines, opts));
    results.push({ ...outcome, ...(ip.pid === undefined ? {} : { pid: ip.pid }) });
  } catch (e) {
    const err = e as { name?: unknown; code?: unknown; message?: unknown };
    results.push({ error: { name: String(err.name), code: err.code, message: String(err.message) } });
  }
  const act = scenario.between?.[String(i)];
  if (act !== undefined && ip.pid !== undefined) {
    const killed = ip.pid;
    process.kill(killed, act === 'kill' ? 'SIGKILL' : 'SIGSTOP');
    // killed while idle: the coprocess has noticed once it no longer names that ip
    if (act === 'kill') await waitFor(() => ip.pid !== killed, PATIENCE_MS, { what: `the coprocess to notice that ip ${killed} died` });
  }
}
const pid = ip.pid;
const idle = pid === undefined ? undefined : {
  pid,
  environ: readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter((e) => e !== ''),
  cwd: readlinkSync(`/proc/${pid}/cwd`),
};
const result: ScenarioResult = { results, starts: ip.starts, ...(idle === undefined ? {} : { idle }) };
process.stdout.write(`${JSON.stringify(result)}\n`);
