/**
 * The command lines of the newest-upstream additions, run by the real qemu as an ordinary user:
 * `xkvm --dry-run` prints them, qemu starts them (stopped, `-S`) and says over QMP what it made.
 * Runs as root (it switches to nobody, so that file permissions count).
 */
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/reference.js';
import { shellSplit } from '../support/shell-split.js';

const CLIENT_BIN = join(REPO_ROOT, 'dist', 'bin', 'xkvm.cjs');
const NOBODY = 65534;
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';

const dir = mkdtempSync(join(tmpdir(), 'xkvm-plan-qemu-'));
chmodSync(dir, 0o755);
chownSync(dir, NOBODY, NOBODY);
test.after(() => rmSync(dir, { recursive: true, force: true }));

const asNobody = { uid: NOBODY, gid: NOBODY, cwd: dir, encoding: 'utf8' as const, timeout: 60_000 };
const ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dir, LANG: 'C' };

/** The qemu argv `xkvm --dry-run ARGS` prints, as nobody. */
function dryRun(args: string[]): string[] {
  const r = spawnSync(process.execPath, [CLIENT_BIN, '--dry-run', ...args], { ...asNobody, env: ENV });
  assert.is(r.status, 0, r.stderr);
  const line = r.stderr.split('\n').find((l) => !l.startsWith('xkvm: ') && /qemu-system-/.test(l));
  assert.ok(line !== undefined, `a qemu line on stderr: ${r.stderr}`);
  return shellSplit(line!);
}

/** Start argv stopped, as nobody, and ask it over QMP (stdio) what the given QOM paths hold. */
function qomList(argv: string[], paths: string[]): { status: number | null; stderr: string; replies: unknown[] } {
  const input = [
    { execute: 'qmp_capabilities' },
    ...paths.map((path) => ({ execute: 'qom-list', arguments: { path } })),
    { execute: 'quit' },
  ].map((c) => JSON.stringify(c)).join('\n') + '\n';
  const r = spawnSync(argv[0]!, [...argv.slice(1), '-S', '-display', 'none', '-monitor', 'none', '-serial', 'none', '-qmp', 'stdio'], {
    ...asNobody,
    env: ENV,
    input,
  });
  const replies = r.stdout.split('\n').filter((l) => l.startsWith('{"return"')).map((l) => (JSON.parse(l) as { return: unknown }).return);
  return { status: r.status, stderr: r.stderr, replies };
}

test('qemu starts the default command line with a virtio-rng-pci (rng0) fed by the rng-random object objrng0', () => {
  const argv = dryRun(['-n', 'user']);
  const { status, stderr, replies } = qomList(argv, ['/machine/peripheral', '/objects']);
  assert.is(status, 0, stderr);
  const peripheral = replies[1] as Array<{ name: string; type: string }>;
  const objects = replies[2] as Array<{ name: string; type: string }>;
  assert.ok(peripheral.some((p) => p.name === 'rng0' && p.type === 'child<virtio-rng-pci>'), JSON.stringify(peripheral));
  assert.ok(objects.some((o) => o.name === 'objrng0' && o.type === 'child<rng-random>'), JSON.stringify(objects));
});

test('--bios FILE the user cannot write: qemu opens it (readonly=on); the same drive without it is refused by qemu', () => {
  const bios = join(dir, 'bios-ro.fd');
  copyFileSync(OVMF_CODE, bios);
  chownSync(bios, NOBODY, NOBODY);
  chmodSync(bios, 0o444);
  const argv = dryRun(['-n', 'user', '--bios', bios]);
  assert.ok(argv.includes(`if=pflash,format=raw,file=${bios},readonly=on`), argv.join(' '));
  const started = qomList(argv, []);
  assert.is(started.status, 0, started.stderr);
  // The control: the reference's drive (read-write) is what qemu cannot open.
  const reference = argv.map((w) => w.replace(/,readonly=on$/, ''));
  const refused = qomList(reference, []);
  assert.is.not(refused.status, 0);
  assert.match(refused.stderr, /Permission denied/);
});

test.run();
