/** Repeated wall-clock timing of a command, with median and spread; interleaved runs. */
import { spawnSync } from 'node:child_process';

export interface Timing {
  label: string;
  runs: number[];
  median: number;
  p10: number;
  p90: number;
}

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[i]!;
}

export function summarise(label: string, runs: number[]): Timing {
  const sorted = [...runs].sort((a, b) => a - b);
  return { label, runs, median: quantile(sorted, 0.5), p10: quantile(sorted, 0.1), p90: quantile(sorted, 0.9) };
}

export interface Command {
  label: string;
  argv: string[];
  cwd?: string;
}

/** Time each command `rounds` times, alternating between them so machine noise hits all alike. */
export function timeCommands(commands: Command[], rounds: number, warmup = 2): Timing[] {
  const runs = commands.map(() => [] as number[]);
  for (let r = -warmup; r < rounds; r++) {
    commands.forEach((c, i) => {
      const start = process.hrtime.bigint();
      const result = spawnSync(c.argv[0]!, c.argv.slice(1), { cwd: c.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (result.status !== 0) throw new Error(`${c.label} failed (${result.status}): ${String(result.stderr).slice(0, 300)}`);
      if (r >= 0) runs[i]!.push(ms);
    });
  }
  return commands.map((c, i) => summarise(c.label, runs[i]!));
}
