/**
 * Console relay: 64 MiB written by a program through the client's pty (the program stands in
 * for qemu via --kvm), against util-linux `script` relaying the same program, in the same run.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timeCommands, type Timing } from './measure.js';

export function benchRelay(client: string, rounds: number): { ours: Timing; script: Timing } {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-relay-'));
  const program = join(dir, 'emit');
  // 64 MiB of printable text (raw bytes would make the pty's line discipline do odd things).
  writeFileSync(program, '#!/bin/sh\nexec /usr/bin/head -c 67108864 /dev/zero | /usr/bin/tr "\\000" "x"\n');
  chmodSync(program, 0o755);
  try {
    const [ours, script] = timeCommands([
      { label: 'xkvm pty relay, 64 MiB', argv: [process.execPath, client, '--kvm', program, '-n', 'user'], cwd: dir },
      { label: 'script(1) relay, 64 MiB', argv: ['/usr/bin/script', '-qfec', program, '/dev/null'], cwd: dir },
    ], rounds, 1);
    return { ours: ours!, script: script! };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
