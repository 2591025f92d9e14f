import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyGuest } from '../../../client/src/demo/guest-image.js';
import { runClient, startClient } from '../../support/cli.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'xkvm-pty-'));
const image = join(dir, 'guest.img');
const env = { ...process.env, XDG_CACHE_HOME: join(dir, 'cache') };

function qemuAlive(marker: string): boolean {
  try {
    execFileSync('/usr/bin/pgrep', ['-f', marker]);
    return true;
  } catch {
    return false;
  }
}

test.before(async () => {
  await writeTinyGuest(image);
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('a guest booted without a terminal has its serial console relayed and its exit status returned', async () => {
  const r = await runClient(['-n', 'user', '-d', image, '--no-reboot', '--', '-m', '32', '-nographic'], { env, deadlineMs: 60_000 });
  assert.match(r.stdout, 'xkvm tiny guest: booted');
  assert.match(r.stdout, 'xkvm tiny guest: powering off');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /using TCG|^$/);
});

test("qemu's own failure status comes back as the client's status", async () => {
  const r = await runClient(['-n', 'user', '--', '-m', '32', '-nographic', '-kernel', join(dir, 'missing-kernel')], { env });
  assert.is(r.status, 1);
  assert.match(r.stdout, 'could not open kernel file');
});

for (const [signal, status] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const) {
  test(`${signal} to the client stops a running qemu and the client exits ${status}`, async () => {
    // No disk: the firmware keeps trying to boot, so qemu only ends when stopped.
    const marker = `xkvm-pty-test-${signal}`;
    const run = startClient(['-n', 'user', '--', '-m', '32', '-nographic', '-name', marker], { env });
    await run.waitFor('iPXE', 30_000);
    assert.ok(qemuAlive(marker), 'qemu should be running');
    run.child.kill(signal);
    const r = await run.done(15_000);
    assert.is(r.status, status, r.stderr);
    assert.not.ok(qemuAlive(marker), 'qemu should be gone');
  });
}

test('SIGKILL to the client hangs up the pty and qemu ends by itself', async () => {
  const marker = 'xkvm-pty-test-SIGKILL';
  const run = startClient(['-n', 'user', '--', '-m', '32', '-nographic', '-name', marker], { env });
  await run.waitFor('iPXE', 30_000);
  run.child.kill('SIGKILL');
  await run.done(5_000);
  await waitFor(() => !qemuAlive(marker), PATIENCE_MS, { what: 'qemu to end when the pty hangs up' });
});

test.run();
