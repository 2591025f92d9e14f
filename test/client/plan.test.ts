import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLaunchOptions } from '../../client/src/cli/options.js';
import { makePlan, nicRequests, qemuArgv, withChosenMacs, type PlanEnvironment } from '../../client/src/plan.js';
import { ProbeCache } from '../../client/src/qemu/probe-cache.js';
import type { Accel } from '../../client/src/qemu/accel.js';

const dir = mkdtempSync(join(tmpdir(), 'xkvm-plan-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const TCG: Accel = { kvm: false, args: ['-accel', 'tcg'], reason: '/dev/kvm does not exist' };
const KVM: Accel = { kvm: true, args: ['-enable-kvm'] };

function env(machine: string, accel: Accel, extra: NodeJS.ProcessEnv = {}): PlanEnvironment & { resolved: string[] } {
  const resolved: string[] = [];
  return {
    machine,
    env: extra,
    accel,
    prober: { properties: (model) => (model.startsWith('virtio-net') ? ['mac', 'bootindex'] : []) },
    detectFormat: async () => 'qcow2',
    bridgeExists: () => true,
    debug: () => {},
    resolveQemu: (name) => {
      resolved.push(name);
      return `/usr/bin/${name}`;
    },
    cache: new ProbeCache(join(dir, 'cache.json')),
    resolved,
  };
}

async function argv(args: string[], e: PlanEnvironment): Promise<string[]> {
  const plan = await makePlan(parseLaunchOptions(args), e);
  return qemuArgv(plan, plan.nets.map((n, i) => (n.connection === 'user' ? undefined : `dryruntap${i}`)));
}

test('x86_64 uses qemu-system-x86_64, -enable-kvm with KVM, virtio-scsi-pci, then a virtio-rng-pci fed from /dev/urandom', async () => {
  const e = env('x86_64', KVM);
  assert.equal(await argv(['-n', 'user'], e), [
    'qemu-system-x86_64', '-enable-kvm', '-device', 'virtio-scsi-pci,id=virtio-scsi-xkvm',
    '-object', 'rng-random,filename=/dev/urandom,id=objrng0', '-device', 'virtio-rng-pci,rng=objrng0,id=rng0',
    '-device', 'virtio-net-pci,netdev=net00', '-netdev', 'type=user,id=net00']);
});

test('without KVM the accelerator is TCG and the plan says why in one note', async () => {
  const plan = await makePlan(parseLaunchOptions(['-n', 'user']), env('x86_64', TCG));
  assert.equal(plan.head.slice(0, 3), ['qemu-system-x86_64', '-accel', 'tcg']);
  assert.is(plan.notes.length, 1);
  assert.match(plan.notes[0]!, 'using TCG');
});

test('i686 uses qemu-system-i386', async () => {
  const e = env('i686', KVM);
  assert.is((await argv(['-n', 'user'], e))[0], 'qemu-system-i386');
});

test('s390x uses ccw devices for the network, the scsi bus and the rng, and model=virtio means virtio-net-ccw', async () => {
  const e = env('s390x', KVM);
  const out = await argv(['-n', 'user', '-n', 'br0,model=virtio'], e);
  assert.is(out[0], 'qemu-system-s390x');
  assert.equal(out.slice(2, 8), [
    '-device', 'virtio-scsi-ccw,id=virtio-scsi-xkvm',
    '-object', 'rng-random,filename=/dev/urandom,id=objrng0', '-device', 'virtio-rng-ccw,rng=objrng0,id=rng0']);
  assert.not.ok(out.some((w) => w.startsWith('virtio-rng-pci')));
  assert.ok(out.includes('virtio-net-ccw,netdev=net00'));
  assert.ok(out.includes('virtio-net-ccw,netdev=net01'));
});

test('ppc64le uses pseries without USB and an spapr-vscsi controller, whatever DEF_NETMODEL says', async () => {
  const e = env('ppc64le', KVM, { DEF_NETMODEL: 'e1000' });
  const out = await argv(['-n', 'user'], e);
  assert.equal(out.slice(0, 6), ['qemu-system-ppc64', '-enable-kvm', '-machine', 'pseries,usb=off', '-device', 'spapr-vscsi']);
  assert.ok(out.includes('virtio-net-pci,netdev=net00'));
});

test('aarch64 uses the virt machine with the host CPU under KVM and the max CPU under TCG', async () => {
  assert.equal((await argv(['-n', 'user'], env('aarch64', KVM))).slice(0, 6), ['qemu-system-aarch64', '-enable-kvm', '-machine', 'virt', '-cpu', 'host']);
  assert.equal((await argv(['-n', 'user'], env('aarch64', TCG))).slice(0, 7), ['qemu-system-aarch64', '-accel', 'tcg', '-machine', 'virt', '-cpu', 'max']);
});

test('DEF_NETMODEL and DEF_DISK_DRIVER change the defaults on x86_64, as in the reference', async () => {
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, Buffer.alloc(512));
  const out = await argv(['-n', 'user', '-d', disk], env('x86_64', KVM, { DEF_NETMODEL: 'e1000', DEF_DISK_DRIVER: 'scsi-hd' }));
  assert.ok(out.includes('e1000,netdev=net00'), out.join(' '));
  assert.ok(out.includes('scsi-hd,drive=disk00,serial=disk.img'), out.join(' '));
});

test('the virtio-rng comes right after the virtio-scsi bus on ppc64 and aarch64 too, before firmware-free networks and disks', async () => {
  for (const machine of ['ppc64le', 'aarch64']) {
    const out = await argv(['-n', 'user'], env(machine, KVM));
    const scsi = out.indexOf('virtio-scsi-pci,id=virtio-scsi-xkvm');
    assert.ok(scsi > 0, machine);
    assert.equal(out.slice(scsi + 1, scsi + 5),
      ['-object', 'rng-random,filename=/dev/urandom,id=objrng0', '-device', 'virtio-rng-pci,rng=objrng0,id=rng0'], machine);
    assert.is(out[scsi + 5], '-device', machine);
    assert.match(out[scsi + 6]!, /^virtio-net-pci,/, machine);
  }
});

function lockingEnv(value: string | undefined, shareRw: boolean): PlanEnvironment & { asked: string[] } {
  const asked: string[] = [];
  const e = env('x86_64', KVM, value === undefined ? {} : { _QEMU_SUPPORTS_FILE_LOCKING: value });
  return {
    ...e,
    prober: {
      properties: (model) => {
        asked.push(model);
        return model === 'virtio-blk' ? ['drive', 'serial', ...(shareRw ? ['share-rw'] : [])] : [];
      },
    },
    asked,
  };
}

test('_QEMU_SUPPORTS_FILE_LOCKING=false drops file.locking= without asking qemu, even when qemu has it', async () => {
  const disk = join(dir, 'locking.img');
  writeFileSync(disk, Buffer.alloc(512));
  const e = lockingEnv('false', true);
  const out = await argv(['-n', 'user', '-d', `${disk},file.locking=off`], e);
  assert.ok(out.includes(`file=${disk},id=disk00,if=none,format=qcow2,index=0`), out.join(' '));
  assert.not.ok(out.join(' ').includes('file.locking'));
  assert.not.ok(e.asked.includes('virtio-blk'), 'qemu was not asked about virtio-blk');
});

test('_QEMU_SUPPORTS_FILE_LOCKING=true keeps file.locking= on -drive even when qemu seems to lack it', async () => {
  const disk = join(dir, 'locking.img');
  writeFileSync(disk, Buffer.alloc(512));
  const out = await argv(['-n', 'user', '-d', `${disk},file.locking=off`], lockingEnv('true', false));
  assert.ok(out.includes(`file=${disk},id=disk00,if=none,format=qcow2,index=0,file.locking=off`), out.join(' '));
});

test('_QEMU_SUPPORTS_FILE_LOCKING unset or empty: qemu is asked (share-rw on virtio-blk)', async () => {
  const disk = join(dir, 'locking.img');
  writeFileSync(disk, Buffer.alloc(512));
  for (const value of [undefined, '']) {
    const without = await argv(['-n', 'user', '-d', `${disk},file.locking=off`], lockingEnv(value, false));
    assert.not.ok(without.join(' ').includes('file.locking'), `${String(value)}: dropped`);
    const withIt = await argv(['-n', 'user', '-d', `${disk},file.locking=off`], lockingEnv(value, true));
    assert.ok(withIt.join(' ').includes(',file.locking=off'), `${String(value)}: kept`);
  }
});

test('_QEMU_SUPPORTS_FILE_LOCKING with another value is refused, saying what it may be', async () => {
  try {
    await makePlan(parseLaunchOptions(['-n', 'user']), lockingEnv('yes', true));
    assert.unreachable();
  } catch (error) {
    assert.match((error as Error).message, /_QEMU_SUPPORTS_FILE_LOCKING must be 'true' or 'false' .*got 'yes'/);
  }
});

test('--no-reboot comes right after the accelerator', async () => {
  const out = await argv(['--no-reboot', '-n', 'user'], env('x86_64', TCG));
  assert.equal(out.slice(0, 4), ['qemu-system-x86_64', '-accel', 'tcg', '-no-reboot']);
});

test('--kvm names the binary and no Debian package is suggested for it', async () => {
  const e = env('x86_64', KVM);
  const out = await argv(['--kvm', 'my-qemu', '-n', 'user'], e);
  assert.is(out[0], 'my-qemu');
  assert.equal(e.resolved, ['my-qemu']);
});

test('a missing bridge is refused before anything else happens, naming it and what to do', async () => {
  const e = { ...env('x86_64', KVM), bridgeExists: (name: string) => name !== 'br9' };
  try {
    await makePlan(parseLaunchOptions(['-n', 'br0', '-n', 'br9']), e);
    assert.unreachable();
  } catch (error) {
    assert.match((error as Error).message, /bridge br9 does not exist: create it .* or use --netdev user/);
  }
});

test('the helper is asked for each bridged netdev\'s bridge, its queues=N and the MAC qemu gets (none for mac=auto); user networking is not asked for', async () => {
  const plan = await makePlan(parseLaunchOptions(['-n', 'br0,queues=4', '-n', 'user', '-n', 'br1,mac=:07', '-n', 'br0']), env('x86_64', KVM));
  assert.equal(nicRequests(plan), [{ bridge: 'br0', queues: 4 }, { bridge: 'br1', mac: '52:54:00:12:34:07' }, { bridge: 'br0' }]);
  // queues=N stays qemu's -netdev tap option, as before.
  assert.is(plan.nets[0]!.netdev, 'type=tap,id=net00,script=no,downscript=no,queues=4');
});

test('MACs chosen under mac-lock go on the -device of the mac=auto netdevs they were chosen for, and nowhere else', async () => {
  const plan = await makePlan(parseLaunchOptions(['-n', 'br0', '-n', 'user', '-n', 'br1,mac=:07', '-n', 'br2,bootindex=1']), env('x86_64', KVM));
  const before = qemuArgv(plan, ['t0', undefined, 't2', 't3']);
  const chosen = withChosenMacs(plan, [{ bridge: 'br0', mac: '52:54:00:aa:bb:01' }, { bridge: 'br1', mac: '52:54:00:12:34:07' }, { bridge: 'br2', mac: '52:54:00:aa:bb:03' }]);
  const after = qemuArgv(chosen, ['t0', undefined, 't2', 't3']);
  const devices = (a: string[]): string[] => a.filter((_, i) => a[i - 1] === '-device' && a[i]!.includes('netdev='));
  assert.equal(devices(after), [
    'virtio-net-pci,netdev=net00,mac=52:54:00:aa:bb:01',
    'virtio-net-pci,netdev=net01',
    'virtio-net-pci,netdev=net02,mac=52:54:00:12:34:07',
    'virtio-net-pci,netdev=net03,bootindex=1,mac=52:54:00:aa:bb:03',
  ]);
  assert.equal(after.filter((a) => !a.includes('netdev=')), before.filter((a) => !a.includes('netdev=')), 'nothing else changes');
  assert.equal(qemuArgv(withChosenMacs(plan, nicRequests(plan)), ['t0', undefined, 't2', 't3']), before, 'no lock: the argv is as planned');
});

test.run();
