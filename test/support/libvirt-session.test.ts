// Self-test of the libvirt session harness (libvirt-session.ts) that the libvirt system test builds
// on, and of what libvirt 9.0 does with `bridge_helper`. Needs root and libvirt (.ci/setup).
import { test } from './suite.js';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { domainXml, startLibvirtSession, type LibvirtSession } from './libvirt-session.js';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from './netns.js';
import { procUid } from './procs.js';
import { tunDevices } from './taps.js';
import { waitFor } from './wait.js';

let ns: Netns;
let user: TestUser;
let dir: string;

test.before(() => {
  user = createTestUser('lvself');
  ns = createNetns({ bridges: ['br0'] });
  dir = mkdtempSync('/tmp/xkvmt-lvself-');
  chmodSync(dir, 0o755);
});

test.after(() => {
  ns?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (user !== undefined) removeTestUser(user);
});

function qemuPids(lv: LibvirtSession): number[] {
  return lv.processes().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('/usr/bin/qemu-system-x86_64\0');
    } catch {
      return false;
    }
  });
}

test("the user's session daemon starts in the namespace and runs a domain as the user; stop() leaves no process and no files", async () => {
  const lv = startLibvirtSession(ns, user);
  try {
    lv.define(domainXml({ name: 'plain' }));
    lv.mustVirsh('start', 'plain');
    assert.match(lv.mustVirsh('domstate', 'plain'), 'running');
    const { value: pids } = await waitFor(() => { const q = qemuPids(lv); return q.length === 1 ? q : undefined; }, 20_000, { what: 'one qemu of the user in the namespace' });
    assert.is(procUid(pids[0]!), user.uid, 'qemu runs as the user');
    assert.match(readFileSync(`/proc/${pids[0]!}/cmdline`, 'latin1'), '-accel\0tcg', 'a TCG domain');
    assert.ok(existsSync(join(lv.runtimeDir, 'libvirt', 'libvirt-sock')), 'the daemon listens in the private runtime directory');
    lv.mustVirsh('destroy', 'plain');
    await waitFor(() => qemuPids(lv).length === 0, 20_000, { what: 'qemu to end after virsh destroy' });
  } finally {
    lv.stop();
  }
  assert.equal(lv.processes(), [], 'no process of the user is left in the namespace');
  assert.not.ok(existsSync(lv.runtimeDir), 'the runtime directory is gone');
  assert.not.ok(existsSync(join(user.home, '.config', 'libvirt')), "the user's libvirt configuration is gone");
  assert.not.ok(existsSync(join(user.home, '.cache', 'libvirt')), "the user's libvirt cache is gone");
});

test('libvirt runs bridge_helper itself as `--use-vnet --br=BR --fd=N` with a filtered environment, and a refusal on its stderr reaches virsh', () => {
  // A stand-in helper: records what it got, refuses like xkvm-bridge-helper does (one line, exit 1).
  const record = join(dir, 'record');
  const helper = join(dir, 'refusing-helper');
  writeFileSync(helper, `#!/bin/sh\n{ printf 'argv:%s\\n' "$*"; /usr/bin/env; /usr/bin/ls /proc/self/fd; } > ${record}\necho 'stand-in: refused by policy' >&2\nexit 1\n`, { mode: 0o755 });
  writeFileSync(record, '', { mode: 0o666 });
  chmodSync(record, 0o666);
  const lv = startLibvirtSession(ns, user, { bridgeHelper: helper, env: { XKVM_HELPER_SOCKET: join(dir, 'nowhere.sock') } });
  try {
    lv.define(domainXml({ name: 'refused', bridge: 'br0', mac: '52:54:00:12:34:31' }));
    const started = lv.virsh('start', 'refused');
    assert.is.not(started.status, 0, 'the domain does not start');
    assert.match(started.stderr, 'stand-in: refused by policy');
    const seen = readFileSync(record, 'utf8');
    const argv = /^argv:--use-vnet --br=br0 --fd=(\d+)$/m.exec(seen);
    assert.ok(argv, `argv in libvirt's order: ${seen}`);
    assert.match(seen, `XDG_RUNTIME_DIR=${lv.runtimeDir}`);
    assert.not.match(seen, 'XKVM_HELPER_SOCKET', "the daemon's XKVM_HELPER_SOCKET does not reach the helper");
    const others = seen.split('\n').filter((l) => /^\d+$/.test(l)).map(Number).filter((fd) => fd > 2 && fd !== Number(argv[1]));
    assert.ok(others.length <= 1, `fds 0-2 and N only, plus the one ls opens: ${others.join(' ')}`);
    assert.match(lv.mustVirsh('domstate', 'refused'), 'shut off');
    assert.equal([...tunDevices(ns).keys()], [], 'no tap');
  } finally {
    lv.stop();
  }
});

test.run();
