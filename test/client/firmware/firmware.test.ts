import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ClientError } from '../../../client/src/errors.js';
import { machineTypeFor, planFirmware, type FirmwarePlan, type FirmwareRequest } from '../../../client/src/firmware/firmware.js';

const FIRMWARE_JS = fileURLToPath(new URL('../../../client/src/firmware/firmware.js', import.meta.url));

/**
 * planFirmware reads the real descriptor directories; XDG_CONFIG_HOME's directory comes last
 * and overrides same-named files, so an empty file there for each host descriptor masks it and
 * the tests see only the descriptors they write.
 */
const root = mkdtempSync(join(tmpdir(), 'xkvm-firmware-test-'));
chmodSync(root, 0o755);
const userDir = join(root, 'config', 'qemu', 'firmware');
mkdirSync(userDir, { recursive: true });
process.env['XDG_CONFIG_HOME'] = join(root, 'config');
function resetDescriptors(): void {
  for (const name of readdirSync(userDir)) rmSync(join(userDir, name));
  for (const dir of ['/usr/share/qemu/firmware', '/etc/qemu/firmware']) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) if (name.endsWith('.json')) writeFileSync(join(userDir, name), '');
  }
}
function writeDescriptor(name: string, code: string, vars: string | undefined, extra: { format?: string; machines?: string[]; arch?: string } = {}): void {
  const mapping: Record<string, unknown> = { device: 'flash', executable: { filename: code, format: extra.format ?? 'raw' } };
  if (vars === undefined) mapping['mode'] = 'combined';
  else mapping['nvram-template'] = { filename: vars, format: extra.format ?? 'raw' };
  writeFileSync(join(userDir, name), JSON.stringify({
    'interface-types': ['uefi'], mapping,
    targets: [{ architecture: extra.arch ?? 'x86_64', machines: extra.machines ?? ['pc-i440fx-*', 'pc-q35-*'] }],
    features: ['acpi-s3'],
  }));
}

const FW = join(root, 'fw');
mkdirSync(FW);
const CODE = join(FW, 'CODE.fd');
const VARS = join(FW, 'VARS.fd');
writeFileSync(CODE, 'code');
writeFileSync(VARS, 'vars');

function existing(...paths: string[]): (p: string) => boolean {
  const set = new Set(paths);
  return (p) => set.has(p);
}

function request(extra: Partial<FirmwareRequest> = {}): FirmwareRequest {
  return { bios: undefined, uefi: true, nvram: undefined, arch: 'x86_64', machine: 'pc-i440fx-99.0', firmwarePackage: 'ovmf', ...extra };
}

function firmwareError(req: FirmwareRequest, exists: (p: string) => boolean): ClientError {
  let caught: unknown;
  try {
    planFirmware(req, exists);
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, ClientError, 'the request was accepted');
  assert.is((caught as ClientError).code, 'FIRMWARE');
  return caught as ClientError;
}

const drive = (file: string, readonly: boolean, format = 'raw'): string[] =>
  ['-drive', `if=pflash,format=${format},file=${file}${readonly ? ',readonly=on' : ''}`];

test.before.each(resetDescriptors);

test('without --bios or --uefi there are no firmware arguments', () => {
  assert.equal(planFirmware(request({ uefi: false }), () => true), { args: [], notes: [] });
});

test('--bios FILE the user can write is one raw pflash drive, read-write', () => {
  const bios = join(root, 'writable-bios.fd');
  writeFileSync(bios, 'bios');
  assert.equal(planFirmware(request({ uefi: false, bios })), { args: drive(bios, false), notes: [] });
});

test('--bios naming a missing file is refused', () => {
  assert.match(firmwareError(request({ uefi: false, bios: '/x/missing.fd' }), () => false).message, /missing\.fd/);
});

test('--uefi uses a descriptor\'s code read-only and its template read-only when there is no --uefi-nvram', () => {
  writeDescriptor('10-test.json', CODE, VARS);
  const plan = planFirmware(request(), existing(CODE, VARS));
  assert.equal(plan.args, [...drive(CODE, true), ...drive(VARS, true)]);
  assert.is(plan.nvramCopy, undefined);
  assert.ok(plan.notes.some((n) => n.includes(join(userDir, '10-test.json'))), plan.notes.join('; '));
  assert.ok(plan.notes.some((n) => /not persist/.test(n)));
});

test('a descriptor\'s format is used for both drives', () => {
  writeDescriptor('10-test.json', CODE, VARS, { format: 'qcow2' });
  assert.equal(planFirmware(request(), existing(CODE, VARS)).args, [...drive(CODE, true, 'qcow2'), ...drive(VARS, true, 'qcow2')]);
});

test('a descriptor for other machines is not used: the fallback paths are', () => {
  writeDescriptor('10-q35only.json', CODE, VARS, { machines: ['pc-q35-*'] });
  const code4m = '/usr/share/OVMF/OVMF_CODE_4M.fd';
  const vars4m = '/usr/share/OVMF/OVMF_VARS_4M.fd';
  assert.equal(planFirmware(request(), existing(CODE, VARS, code4m, vars4m)).args, [...drive(code4m, true), ...drive(vars4m, true)]);
  assert.equal(planFirmware(request({ machine: 'pc-q35-99.0' }), existing(CODE, VARS, code4m, vars4m)).args, [...drive(CODE, true), ...drive(VARS, true)]);
});

test('a descriptor whose firmware files are missing gives way to the next descriptor', () => {
  writeDescriptor('10-stale.json', join(FW, 'gone-CODE.fd'), join(FW, 'gone-VARS.fd'));
  writeDescriptor('20-good.json', CODE, VARS);
  const plan = planFirmware(request(), existing(CODE, VARS, '/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'));
  assert.equal(plan.args, [...drive(CODE, true), ...drive(VARS, true)]);
});

test('without descriptors the 4M OVMF build is preferred, then the 2M one (each needing code and vars), then OVMF.fd', () => {
  const c4 = '/usr/share/OVMF/OVMF_CODE_4M.fd';
  const v4 = '/usr/share/OVMF/OVMF_VARS_4M.fd';
  const c2 = '/usr/share/OVMF/OVMF_CODE.fd';
  const v2 = '/usr/share/OVMF/OVMF_VARS.fd';
  const joined = '/usr/share/ovmf/OVMF.fd';
  assert.equal(planFirmware(request(), existing(c4, v4, c2, v2, joined)).args, [...drive(c4, true), ...drive(v4, true)]);
  assert.equal(planFirmware(request(), existing(c4, c2, v2, joined)).args, [...drive(c2, true), ...drive(v2, true)]);
  assert.equal(planFirmware(request(), existing(c4, joined)).args, drive(joined, true));
});

test('aarch64 falls back to AAVMF and names its package when nothing is there', () => {
  const code = '/usr/share/AAVMF/AAVMF_CODE.fd';
  const vars = '/usr/share/AAVMF/AAVMF_VARS.fd';
  const arm = request({ arch: 'aarch64', machine: 'virt-99.0', firmwarePackage: 'qemu-efi-aarch64' });
  assert.equal(planFirmware(arm, existing(code, vars)).args, [...drive(code, true), ...drive(vars, true)]);
  assert.match(firmwareError(arm, existing('/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd')).message, /apt-get install qemu-efi-aarch64/);
});

test('--uefi-nvram FILE that does not exist: a copy of the template is planned and FILE is read-write', () => {
  writeDescriptor('10-test.json', CODE, VARS);
  const nvram = join(root, 'my-vars.fd');
  const plan = planFirmware(request({ nvram }), existing(CODE, VARS));
  assert.equal(plan.args, [...drive(CODE, true), ...drive(nvram, false)]);
  assert.equal(plan.nvramCopy, { from: VARS, to: nvram });
  assert.is(existsSync(nvram), false, 'planning copies nothing');
});

test('--uefi-nvram with a combined image: the copy comes from the image itself and it is the only drive', () => {
  const joined = '/usr/share/ovmf/OVMF.fd';
  const nvram = join(root, 'combined-vars.fd');
  const plan = planFirmware(request({ nvram }), existing(joined));
  assert.equal(plan.args, drive(nvram, false));
  assert.equal(plan.nvramCopy, { from: joined, to: nvram });
});

test('--uefi-nvram FILE that exists and is writable is used read-write, with no copy', () => {
  writeDescriptor('10-test.json', CODE, VARS);
  const nvram = join(root, 'writable-vars.fd');
  writeFileSync(nvram, 'vars');
  const plan = planFirmware(request({ nvram }), (p) => p === CODE || p === VARS || existsSync(p));
  assert.equal(plan.args, [...drive(CODE, true), ...drive(nvram, false)]);
  assert.is(plan.nvramCopy, undefined);
});

/**
 * planFirmware run as an ordinary user: root may write anything, so when the tests run as root
 * the plan is made in a child running as nobody.
 */
function planAsOrdinaryUser(req: FirmwareRequest, known: string[]): FirmwarePlan {
  chmodSync(userDir, 0o755);
  for (const name of readdirSync(userDir)) chmodSync(join(userDir, name), 0o644);
  const script = `
    import { existsSync } from 'node:fs';
    const { planFirmware } = await import(process.argv[1]);
    const known = new Set(JSON.parse(process.argv[3]));
    const plan = planFirmware(JSON.parse(process.argv[2]), (p) => known.has(p) || existsSync(p));
    process.stdout.write(JSON.stringify(plan));`;
  const asRoot = process.geteuid?.() === 0;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, FIRMWARE_JS, JSON.stringify(req), JSON.stringify(known)], {
    encoding: 'utf8',
    cwd: '/',
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', XDG_CONFIG_HOME: join(root, 'config'), HOME: '/nonexistent' },
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as FirmwarePlan;
}

test('--uefi-nvram FILE that exists read-only is used with readonly=on (checked as an ordinary user)', () => {
  writeDescriptor('10-test.json', CODE, VARS);
  const nvram = join(root, 'readonly-vars.fd');
  writeFileSync(nvram, 'vars');
  chmodSync(nvram, 0o444);
  const plan = planAsOrdinaryUser(request({ nvram }), [CODE, VARS]);
  assert.equal(plan.args, [...drive(CODE, true), ...drive(nvram, true)]);
  assert.is(plan.nvramCopy, undefined);
});

test('--bios FILE the user cannot write is attached with readonly=on, as upstream xkvm does (checked as an ordinary user)', () => {
  const bios = join(root, 'readonly-bios.fd');
  writeFileSync(bios, 'bios');
  chmodSync(bios, 0o444);
  const plan = planAsOrdinaryUser(request({ uefi: false, bios }), []);
  assert.equal(plan.args, drive(bios, true));
  assert.is(plan.notes.length, 1);
  assert.match(plan.notes[0]!, /readonly=on/);
});

test('no firmware at all is an error naming the package to install', () => {
  const error = firmwareError(request(), () => false);
  assert.match(error.message, /apt-get install ovmf/);
  assert.match(error.message, /x86_64/);
});

test('no firmware but an existing --uefi-nvram FILE: FILE is used as code and variables together', () => {
  const nvram = join(root, 'whole.fd');
  writeFileSync(nvram, 'whole');
  const plan = planFirmware(request({ nvram }), (p) => p === nvram);
  assert.equal(plan.args, drive(nvram, false));
  assert.ok(plan.notes.some((n) => n.includes(nvram)));
});

test('machineTypeFor: the architecture\'s default machine as a concrete versioned name', () => {
  assert.is(machineTypeFor('x86_64', []), 'pc-i440fx-99.0');
  assert.is(machineTypeFor('i686', []), 'pc-i440fx-99.0');
  assert.is(machineTypeFor('aarch64', []), 'virt-99.0');
});

test('machineTypeFor: -machine/-M from the qemu arguments, aliases resolved, options after the comma ignored, last one wins', () => {
  assert.is(machineTypeFor('x86_64', ['-M', 'q35']), 'pc-q35-99.0');
  assert.is(machineTypeFor('x86_64', ['-machine', 'q35,accel=kvm,smm=off']), 'pc-q35-99.0');
  assert.is(machineTypeFor('x86_64', ['-machine', 'pc-q35-7.2']), 'pc-q35-7.2');
  assert.is(machineTypeFor('x86_64', ['-M', 'q35', '-m', '512', '-machine', 'pc']), 'pc-i440fx-99.0');
  assert.is(machineTypeFor('aarch64', ['-machine', 'virt,gic-version=3']), 'virt-99.0');
  assert.is(machineTypeFor('x86_64', ['-m', '512', '-machine']), 'pc-i440fx-99.0');
});

test('machineTypeFor: -machine type=NAME names the machine, and -machine with only properties keeps the default', () => {
  assert.is(machineTypeFor('x86_64', ['-machine', 'type=q35']), 'pc-q35-99.0');
  assert.is(machineTypeFor('x86_64', ['-machine', 'accel=kvm,type=q35']), 'pc-q35-99.0');
  assert.is(machineTypeFor('x86_64', ['-machine', 'accel=tcg']), 'pc-i440fx-99.0');
});

test.after(() => {
  rmSync(root, { recursive: true, force: true });
});

test.run();
