import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ClientError } from '../../../client/src/errors.js';
import { ProbeCache } from '../../../client/src/qemu/probe-cache.js';
import { isDeviceOption, QemuDeviceProber, type DeviceProber } from '../../../client/src/qemu/probe.js';

const QEMU = 'qemu-system-x86_64';
const root = mkdtempSync(join(tmpdir(), 'xkvm-probe-test-'));

function probeError(run: () => unknown): ClientError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, ClientError, 'the probe did not fail');
  assert.is((caught as ClientError).code, 'QEMU_PROBE');
  return caught as ClientError;
}

test('real qemu: virtio-blk has drive, serial and share-rw; scsi-hd has wwn', () => {
  const blk = new QemuDeviceProber(QEMU).properties('virtio-blk');
  for (const name of ['drive', 'serial', 'share-rw', 'bootindex']) assert.ok(blk.includes(name), name);
  assert.not.ok(blk.includes('wwn'));
  assert.ok(new QemuDeviceProber(QEMU).properties('scsi-hd').includes('wwn'));
});

test('real qemu: a device model qemu does not know is an error naming it and how to list models', () => {
  // qemu 7.2 prints "Device 'nosuch-model' not found" on stderr and still exits 0.
  const error = probeError(() => new QemuDeviceProber(QEMU).properties('nosuch-model'));
  assert.match(error.message, /nosuch-model/);
  assert.match(error.message, /-device help/);
});

test('an unknown model reported qemu 7 style (message on stderr, status 0) is an error and is not cached', () => {
  const bin = join(root, 'qemu-exit0');
  writeFileSync(bin, `#!/bin/sh\necho "qemu-exit0: -device $2: Device 'nosuch' not found" >&2\nexit 0\n`);
  chmodSync(bin, 0o755);
  const file = join(root, 'cache.json');
  const cache = new ProbeCache(file);
  probeError(() => new QemuDeviceProber(bin, cache).properties('nosuch'));
  cache.save();
  assert.is(new ProbeCache(file).get(bin, 'nosuch'), undefined);
});

test('a model qemu refuses with a failure status is an error with qemu\'s first line, control characters escaped', () => {
  const bin = join(root, 'qemu-fails');
  writeFileSync(bin, `#!/bin/sh\nprintf 'bad \\033[31mmodel\\nsecond line\\n' >&2\nexit 1\n`);
  chmodSync(bin, 0o755);
  const error = probeError(() => new QemuDeviceProber(bin).properties('x'));
  assert.match(error.message, /bad \\e\[31mmodel/);
  assert.not.match(error.message, /\u001b/);
  assert.not.match(error.message, /second line/);
});

test('a qemu that cannot be run is an error naming it', () => {
  const error = probeError(() => new QemuDeviceProber(join(root, 'no-such-qemu')).properties('e1000'));
  assert.match(error.message, /no-such-qemu/);
});

test('isDeviceOption compares the name before the first "=" with the model\'s properties', () => {
  const prober: DeviceProber = { properties: () => ['mac', 'addr', 'share-rw'] };
  assert.is(isDeviceOption(prober, 'm', 'addr=0x5'), true);
  assert.is(isDeviceOption(prober, 'm', 'addr'), true);
  assert.is(isDeviceOption(prober, 'm', 'addr=a=b'), true);
  assert.is(isDeviceOption(prober, 'm', 'ad=0x5'), false);
  assert.is(isDeviceOption(prober, 'm', 'address=0x5'), false);
  assert.is(isDeviceOption(prober, 'm', 'vhost=on'), false);
  assert.is(isDeviceOption(prober, 'm', '=mac'), false);
});

test.after(() => {
  rmSync(root, { recursive: true, force: true });
});

test.run();
