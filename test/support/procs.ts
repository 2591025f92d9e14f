/**
 * Looking at processes through /proc: whether one runs (a zombie does not), its start time (the
 * helper's key for sessions), its parent, uid, command name, descendants and peak RSS.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  readonly state: string;
  readonly ppid: number;
  /** Process group and session (fields 5 and 6). */
  readonly pgrp: number;
  readonly session: number;
  /** The foreground process group of its controlling terminal (field 8; -1 without one). */
  readonly tpgid: number;
  /** Field 22, clock ticks since boot. */
  readonly start: bigint;
}

export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: fields[0] ?? '?',
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    session: Number(fields[3]),
    tpgid: Number(fields[5]),
    start: BigInt(fields[19] ?? '0'),
  };
}

/** Exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

function statusField(pid: number, field: string): string | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'latin1').split('\n').find((l) => l.startsWith(`${field}:`));
    return line?.slice(field.length + 1).trim();
  } catch {
    return undefined;
  }
}

/** The real uid. */
export function procUid(pid: number): number | undefined {
  const value = statusField(pid, 'Uid')?.split(/\s+/)[0];
  return value === undefined ? undefined : Number(value);
}

/** Peak resident set size (VmHWM) in KiB. */
export function peakRssKiB(pid: number): number | undefined {
  const value = statusField(pid, 'VmHWM');
  const m = value === undefined ? null : /^(\d+)\s*kB$/.exec(value);
  return m === null ? undefined : Number(m[1]);
}

/** The NUL-separated initial environment of a process (what it was exec'd with). */
export function procEnviron(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter((e) => e !== '');
  } catch {
    return [];
  }
}

/** Every running descendant of pid (children first, breadth first). */
export function descendants(pid: number): ProcStat[] {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (stat !== undefined && stat.state !== 'Z') all.push(stat);
  }
  const out: ProcStat[] = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next = all.filter((p) => frontier.includes(p.ppid));
    out.push(...next);
    frontier = next.map((p) => p.pid);
  }
  return out;
}

/** The first descendant of pid that satisfies pred. */
export function findDescendant(pid: number, pred: (p: ProcStat) => boolean): ProcStat | undefined {
  return descendants(pid).find(pred);
}

/** Send a signal, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}
