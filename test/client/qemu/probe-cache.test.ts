import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ClientError } from '../../../client/src/errors.js';
import { defaultCacheFile, ProbeCache } from '../../../client/src/qemu/probe-cache.js';
import { QemuDeviceProber } from '../../../client/src/qemu/probe.js';

const PROBE_JS = fileURLToPath(new URL('../../../client/src/qemu/probe.js', import.meta.url));
const CACHE_JS = fileURLToPath(new URL('../../../client/src/qemu/probe-cache.js', import.meta.url));

const root = mkdtempSync(join(tmpdir(), 'xkvm-probe-cache-test-'));
let serial = 0;

/** A stand-in for qemu-system-*: logs each run, knows virtio-net-pci and e1000, fails for the rest. */
function fakeQemu(): { bin: string; runs: () => string[]; cacheFile: string } {
  const dir = join(root, `t${++serial}`);
  mkdirSync(dir);
  const log = join(dir, 'runs.log');
  const bin = join(dir, 'qemu-system-fake');
  writeFileSync(bin, `#!/bin/sh
echo "$*" >> '${log}'
case "$2" in
  virtio-net-pci,help) printf '%s\\n' 'virtio-net-pci options:' '  addr=<int32>           - Slot and optional function number, example: 06.0 or 06 (default: -1)' '  mac=<str>              - Ethernet 6-byte MAC Address, example: 52:54:00:12:34:56' '  romfile=<str>' ;;
  e1000,help) printf '%s\\n' 'e1000 options:' '  autonegotiation=<bool> - on/off (default: true)' '  mac=<str>' ;;
  *) echo "qemu-system-fake: -device $2: Device not found" >&2; exit 1 ;;
esac
`);
  chmodSync(bin, 0o755);
  return {
    bin,
    runs: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
    cacheFile: join(dir, 'cache', 'xkvm', 'qemu-devices.json'),
  };
}

test('the default cache file is under XDG_CACHE_HOME, else ~/.cache', () => {
  assert.is(defaultCacheFile({ XDG_CACHE_HOME: '/c', HOME: '/h' }), '/c/xkvm/qemu-devices.json');
  assert.is(defaultCacheFile({ HOME: '/h' }), '/h/.cache/xkvm/qemu-devices.json');
  assert.is(defaultCacheFile({ XDG_CACHE_HOME: '', HOME: '/h' }), '/h/.cache/xkvm/qemu-devices.json');
});

test('set, save and a fresh cache reading the same file round-trip the property lists', () => {
  const q = fakeQemu();
  const cache = new ProbeCache(q.cacheFile);
  assert.is(cache.get(q.bin, 'virtio-net-pci'), undefined);
  cache.set(q.bin, 'virtio-net-pci', ['addr', 'mac']);
  cache.set(q.bin, 'e1000', ['mac']);
  assert.equal(cache.get(q.bin, 'virtio-net-pci'), ['addr', 'mac']);
  cache.save();
  assert.is(statSync(q.cacheFile).mode & 0o777, 0o600);
  const again = new ProbeCache(q.cacheFile);
  assert.equal(again.get(q.bin, 'virtio-net-pci'), ['addr', 'mac']);
  assert.equal(again.get(q.bin, 'e1000'), ['mac']);
  assert.is(again.get(q.bin, 'rtl8139'), undefined);
  assert.is(again.get(join(root, 'other-binary'), 'e1000'), undefined);
});

test('an unchanged cache is not written', () => {
  const q = fakeQemu();
  const cache = new ProbeCache(q.cacheFile);
  cache.get(q.bin, 'e1000');
  cache.save();
  assert.is(existsSync(q.cacheFile), false);
});

test('a binary reached through a symlink shares the entry of its real path', () => {
  const q = fakeQemu();
  const link = `${q.bin}-link`;
  symlinkSync(q.bin, link);
  const cache = new ProbeCache(q.cacheFile);
  cache.set(link, 'e1000', ['mac']);
  cache.save();
  assert.equal(new ProbeCache(q.cacheFile).get(q.bin, 'e1000'), ['mac']);
});

test('a changed binary (new mtime, new size or a new file) invalidates its entries', () => {
  const q = fakeQemu();
  const save = (): void => {
    const c = new ProbeCache(q.cacheFile);
    c.set(q.bin, 'e1000', ['mac']);
    c.save();
    assert.equal(new ProbeCache(q.cacheFile).get(q.bin, 'e1000'), ['mac']);
  };
  save();
  const later = new Date(Date.now() + 60_000);
  utimesSync(q.bin, later, later);
  assert.is(new ProbeCache(q.cacheFile).get(q.bin, 'e1000'), undefined, 'touched');
  save();
  const st = statSync(q.bin);
  appendFileSync(q.bin, '# upgraded\n');
  utimesSync(q.bin, st.atime, st.mtime);
  assert.is(new ProbeCache(q.cacheFile).get(q.bin, 'e1000'), undefined, 'grown with the same mtime');
  save();
  const copy = `${q.bin}.new`;
  copyFileSync(q.bin, copy);
  const st2 = statSync(q.bin);
  utimesSync(copy, st2.atime, st2.mtime);
  renameSync(copy, q.bin);
  assert.is(new ProbeCache(q.cacheFile).get(q.bin, 'e1000'), undefined, 'replaced by a same-size, same-mtime file');
});

test('a corrupt cache file is ignored, then replaced by a good one', () => {
  const q = fakeQemu();
  mkdirSync(join(q.cacheFile, '..'), { recursive: true });
  const bad = ['not json', '', 'null', '[]', '{"format":2,"binaries":{}}', '{"format":1}',
    JSON.stringify({ format: 1, binaries: { [q.bin]: { key: 5, models: {} } } }),
    JSON.stringify({ format: 1, binaries: { [q.bin]: { key: 'k', models: { e1000: [1, 2] } } } }),
    JSON.stringify({ format: 1, binaries: { [q.bin]: null } })];
  for (const text of bad) {
    writeFileSync(q.cacheFile, text);
    const cache = new ProbeCache(q.cacheFile);
    assert.is(cache.get(q.bin, 'e1000'), undefined, text);
    cache.set(q.bin, 'e1000', ['mac']);
    cache.save();
    assert.equal(new ProbeCache(q.cacheFile).get(q.bin, 'e1000'), ['mac'], `after replacing ${text}`);
  }
});

test('a cache file whose lists are arrays instead of maps is ignored too (entries added to it are not lost)', () => {
  const q = fakeQemu();
  mkdirSync(join(q.cacheFile, '..'), { recursive: true });
  for (const text of ['{"format":1,"binaries":[]}', JSON.stringify({ format: 1, binaries: { [q.bin]: { key: 'stale', models: [] } } })]) {
    writeFileSync(q.cacheFile, text);
    const cache = new ProbeCache(q.cacheFile);
    cache.set(q.bin, 'e1000', ['mac']);
    cache.save();
    assert.equal(new ProbeCache(q.cacheFile).get(q.bin, 'e1000'), ['mac'], `after replacing ${text}`);
  }
});

test('a cache that cannot be written only costs time: save does not throw', () => {
  const q = fakeQemu();
  const blocker = join(root, `blocker-${serial}`);
  writeFileSync(blocker, 'a file where a directory should be');
  const cache = new ProbeCache(join(blocker, 'xkvm', 'qemu-devices.json'));
  cache.set(q.bin, 'e1000', ['mac']);
  cache.save();
  assert.equal(cache.get(q.bin, 'e1000'), ['mac']);
});

test('QemuDeviceProber asks the cache first: qemu runs once for two processes\' worth of lookups', () => {
  const q = fakeQemu();
  for (let process = 0; process < 2; process++) {
    const cache = new ProbeCache(q.cacheFile);
    const prober = new QemuDeviceProber(q.bin, cache);
    for (let i = 0; i < 3; i++) assert.equal(prober.properties('virtio-net-pci'), ['addr', 'mac', 'romfile']);
    cache.save();
  }
  assert.equal(q.runs(), ['-device virtio-net-pci,help']);
  // Another model is a new probe, cached the same way.
  const prober = new QemuDeviceProber(q.bin, new ProbeCache(q.cacheFile));
  assert.equal(prober.properties('e1000'), ['autonegotiation', 'mac']);
  assert.equal(prober.properties('virtio-net-pci'), ['addr', 'mac', 'romfile']);
  assert.is(q.runs().length, 2);
});

test('QemuDeviceProber in two real processes sharing the cache file runs qemu once', () => {
  const q = fakeQemu();
  const script = `
    const { QemuDeviceProber } = await import(process.argv[1]);
    const { ProbeCache } = await import(process.argv[2]);
    const cache = new ProbeCache(process.argv[4]);
    const prober = new QemuDeviceProber(process.argv[3], cache);
    const a = prober.properties('virtio-net-pci');
    const b = prober.properties('virtio-net-pci');
    cache.save();
    process.stdout.write(JSON.stringify([a, b]));`;
  for (let n = 0; n < 2; n++) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, PROBE_JS, CACHE_JS, q.bin, q.cacheFile], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), [['addr', 'mac', 'romfile'], ['addr', 'mac', 'romfile']]);
  }
  assert.equal(q.runs(), ['-device virtio-net-pci,help']);
});

test('without a cache, QemuDeviceProber still remembers within one process', () => {
  const q = fakeQemu();
  const prober = new QemuDeviceProber(q.bin);
  prober.properties('e1000');
  prober.properties('e1000');
  assert.is(q.runs().length, 1);
});

test('a failed probe is an error and is not cached', () => {
  const q = fakeQemu();
  const cache = new ProbeCache(q.cacheFile);
  const prober = new QemuDeviceProber(q.bin, cache);
  assert.throws(() => prober.properties('nosuch'), (e: unknown) => e instanceof ClientError && e.code === 'QEMU_PROBE' && /nosuch/.test(e.message));
  cache.save();
  assert.is(new ProbeCache(q.cacheFile).get(q.bin, 'nosuch'), undefined);
  assert.throws(() => new QemuDeviceProber(q.bin, new ProbeCache(q.cacheFile)).properties('nosuch'));
  assert.is(q.runs().length, 2);
});

test.after(() => {
  rmSync(root, { recursive: true, force: true });
});

test.run();
