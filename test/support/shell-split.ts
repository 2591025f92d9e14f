/** Split a command line exactly as /bin/sh would (word splitting and quote removal, no expansion). */
import { spawnSync } from 'node:child_process';

export function shellSplit(line: string): string[] {
  const r = spawnSync('/bin/sh', ['-c', `for a in ${line}; do printf '%s\\0' "$a"; done`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`/bin/sh could not split: ${line}: ${r.stderr}`);
  const words = r.stdout.split('\0');
  words.pop();
  return words;
}
