import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { tinyGuestImage, writeTinyGuest } from '../../../client/src/demo/guest-image.js';

const BOOT_TIMEOUT_MS = 20_000;
/** The two lines the guest prints on COM1, first and last. */
const BOOT_LINE = 'xkvm tiny guest: booted';
const OFF_LINE = 'xkvm tiny guest: powering off';

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'xkvm-guest-image-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

interface QemuRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  stderr: string;
  timedOut: boolean;
}

/** Boots `image` the way the first run does and collects everything qemu prints. */
function boot(image: string): Promise<QemuRun> {
  const args = [
    '-accel', 'tcg', '-m', '32', '-nographic', '-no-reboot',
    '-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0',
    '-drive', `file=${image},format=raw,if=virtio`,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, BOOT_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        output: Buffer.concat(out).toString('latin1'),
        stderr: Buffer.concat(err).toString('latin1'),
        timedOut,
      });
    });
  });
}

test('the image is whole sectors and ends its first sector with the boot signature', () => {
  const image = tinyGuestImage();
  assert.is(image.length, 1024 * 1024);
  assert.is(image.length % 512, 0);
  assert.is(image[510], 0x55);
  assert.is(image[511], 0xaa);
});

test('the image is the same every time it is made', () => {
  assert.ok(tinyGuestImage().equals(tinyGuestImage()));
});

test('the partition table and everything after the boot sector are zero', () => {
  const image = tinyGuestImage();
  assert.ok(image.subarray(446, 510).every((b) => b === 0));
  assert.ok(image.subarray(512).every((b) => b === 0));
});

test('the addresses the code refers to hold the empty IDT and the two lines', () => {
  const image = tinyGuestImage();
  const at = (address: number, length: number): Buffer => image.subarray(address - 0x7c00, address - 0x7c00 + length);
  // lidt [0x7cb4], mov si, 0x7cba, mov si, 0x7cd4, exactly as encoded in the code
  assert.ok(image.includes(Buffer.from([0x0f, 0x01, 0x1e, 0xb4, 0x7c])));
  assert.ok(image.includes(Buffer.from([0xbe, 0xba, 0x7c])));
  assert.ok(image.includes(Buffer.from([0xbe, 0xd4, 0x7c])));
  assert.equal([...at(0x7cb4, 6)], [0, 0, 0, 0, 0, 0]);
  const boot = `${BOOT_LINE}\r\n\0`;
  const off = `${OFF_LINE}\r\n\0`;
  assert.is(at(0x7cba, boot.length).toString('latin1'), boot);
  assert.is(at(0x7cd4, off.length).toString('latin1'), off);
});

test('writing the image produces exactly its bytes and leaves no temporary file', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'tiny.img');
    await writeTinyGuest(path);
    assert.ok((await readFile(path)).equals(tinyGuestImage()));
    assert.equal(await readdir(dir), ['tiny.img']);
  });
});

test('writing over an existing file replaces it whole', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'tiny.img');
    await writeFile(path, Buffer.alloc(3 * 1024 * 1024, 0xff));
    await writeTinyGuest(path);
    assert.ok((await readFile(path)).equals(tinyGuestImage()));
    assert.equal(await readdir(dir), ['tiny.img']);
  });
});

test('a write that fails at the rename removes its temporary file and leaves the target alone', async () => {
  await withTempDir(async (dir) => {
    // A non-empty directory where the image should go: everything succeeds up to the rename.
    const path = join(dir, 'tiny.img');
    await mkdir(path);
    await writeFile(join(path, 'keep'), 'x');
    let failed = false;
    try {
      await writeTinyGuest(path);
    } catch {
      failed = true;
    }
    assert.ok(failed, 'writeTinyGuest should have failed');
    assert.equal(await readdir(dir), ['tiny.img']);
    assert.equal(await readdir(path), ['keep']);
  });
});

test('the image boots under TCG, prints both lines once on the serial console and exits 0 by itself', async () => {
  await withTempDir(async (dir) => {
    const image = join(dir, 'tiny.img');
    await writeTinyGuest(image);
    const run = await boot(image);
    const shown = `${run.output}\n--- stderr ---\n${run.stderr}`;
    assert.is(run.timedOut, false, `qemu was still running after ${BOOT_TIMEOUT_MS} ms and was killed:\n${shown}`);
    assert.is(run.signal, null, `qemu died of ${String(run.signal)}:\n${shown}`);
    assert.is(run.code, 0, `qemu exited with ${String(run.code)}:\n${shown}`);
    // Each line exactly once and whole: SeaBIOS's serial mirror of int 10h must not have
    // duplicated or interleaved them.
    assert.is(count(run.output, `${BOOT_LINE}\r\n`), 1, shown);
    assert.is(count(run.output, `${OFF_LINE}\r\n`), 1, shown);
    assert.ok(run.output.indexOf(BOOT_LINE) < run.output.indexOf(OFF_LINE), shown);
  });
});

test.run();
