import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { descriptorDirs, findDescriptorFirmware, readDescriptor } from '../../../client/src/firmware/descriptors.js';

interface DescriptorShape {
  code: string;
  vars?: string;
  arch?: string;
  machines?: string[];
  features?: string[];
  mode?: string;
  format?: string;
  types?: string[];
  device?: string;
}

/** A QEMU firmware descriptor (docs/interop/firmware.json) as distributions ship them. */
function descriptor(d: DescriptorShape): string {
  const mapping: Record<string, unknown> = {
    device: d.device ?? 'flash',
    executable: { filename: d.code, format: d.format ?? 'raw' },
  };
  if (d.mode !== undefined) mapping['mode'] = d.mode;
  if (d.vars !== undefined) mapping['nvram-template'] = { filename: d.vars, format: d.format ?? 'raw' };
  return JSON.stringify({
    description: 'test firmware',
    'interface-types': d.types ?? ['uefi'],
    mapping,
    targets: [{ architecture: d.arch ?? 'x86_64', machines: d.machines ?? ['pc-i440fx-*', 'pc-q35-*'] }],
    features: d.features ?? ['acpi-s3', 'verbose-dynamic'],
    tags: [],
  }, null, 4);
}

const root = mkdtempSync(join(tmpdir(), 'xkvm-descriptors-test-'));
let serial = 0;
/** Fresh directories for one test: returns their paths and a writer. */
function dirs(count: number): { paths: string[]; write: (dir: number, name: string, text: string) => void } {
  const paths = Array.from({ length: count }, (_, i) => join(root, `t${++serial}`, `d${i}`));
  for (const p of paths) mkdirSync(p, { recursive: true });
  return { paths, write: (i, name, text) => writeFileSync(join(paths[i]!, name), text) };
}

const PC = 'pc-i440fx-99.0';
const Q35 = 'pc-q35-99.0';

test('a split descriptor gives its code, variable template and format', () => {
  const text = descriptor({ code: '/fw/CODE.fd', vars: '/fw/VARS.fd' });
  assert.equal(readDescriptor(text, '/d/60.json', 'x86_64', PC), {
    source: '/d/60.json', code: '/fw/CODE.fd', varsTemplate: '/fw/VARS.fd', format: 'raw',
  });
  assert.is(readDescriptor(descriptor({ code: '/c', vars: '/v', format: 'qcow2' }), 's', 'x86_64', PC)?.format, 'qcow2');
});

test('the lowest file name wins among fitting descriptors', () => {
  const { paths, write } = dirs(1);
  write(0, '60-b.json', descriptor({ code: '/fw/B', vars: '/fw/VB' }));
  write(0, '40-a.json', descriptor({ code: '/fw/A', vars: '/fw/VA' }));
  write(0, '50-c.json', descriptor({ code: '/fw/C', vars: '/fw/VC' }));
  const found = findDescriptorFirmware('x86_64', PC, paths);
  assert.is(found?.code, '/fw/A');
  assert.is(found?.source, join(paths[0]!, '40-a.json'));
});

test('a file in a later directory overrides the same name in an earlier one', () => {
  const { paths, write } = dirs(3);
  write(0, '50-x.json', descriptor({ code: '/fw/system', vars: '/fw/v' }));
  write(1, '50-x.json', descriptor({ code: '/fw/etc', vars: '/fw/v' }));
  write(2, '50-x.json', descriptor({ code: '/fw/user', vars: '/fw/v' }));
  assert.is(findDescriptorFirmware('x86_64', PC, paths)?.code, '/fw/user');
  assert.is(findDescriptorFirmware('x86_64', PC, paths.slice(0, 2))?.code, '/fw/etc');
});

test('an overriding file that does not fit (or is empty) masks the earlier one instead of falling back to it', () => {
  const { paths, write } = dirs(2);
  write(0, '10-x.json', descriptor({ code: '/fw/masked', vars: '/fw/v' }));
  write(1, '10-x.json', '');
  write(0, '20-y.json', descriptor({ code: '/fw/next', vars: '/fw/v' }));
  assert.is(findDescriptorFirmware('x86_64', PC, paths)?.code, '/fw/next');
});

test('a file name that sorts first still wins when it lives in an earlier directory', () => {
  const { paths, write } = dirs(2);
  write(0, '10-system.json', descriptor({ code: '/fw/system', vars: '/fw/v' }));
  write(1, '90-user.json', descriptor({ code: '/fw/user', vars: '/fw/v' }));
  assert.is(findDescriptorFirmware('x86_64', PC, paths)?.code, '/fw/system');
});

test('secure-boot, requires-smm and enrolled-keys firmware is skipped', () => {
  const { paths, write } = dirs(1);
  write(0, '10-secure.json', descriptor({ code: '/fw/secure', vars: '/fw/v', features: ['secure-boot', 'requires-smm'] }));
  write(0, '20-smm.json', descriptor({ code: '/fw/smm', vars: '/fw/v', features: ['requires-smm'] }));
  write(0, '30-enrolled.json', descriptor({ code: '/fw/enrolled', vars: '/fw/v', features: ['enrolled-keys'] }));
  write(0, '40-plain.json', descriptor({ code: '/fw/plain', vars: '/fw/v', features: ['acpi-s3', 'amd-sev'] }));
  assert.is(findDescriptorFirmware('x86_64', Q35, paths)?.code, '/fw/plain');
});

test('machine globs decide: pc-q35-* fits q35 machines only', () => {
  const { paths, write } = dirs(1);
  write(0, '10-q35.json', descriptor({ code: '/fw/q35', vars: '/fw/v', machines: ['pc-q35-*'] }));
  write(0, '20-pc.json', descriptor({ code: '/fw/pc', vars: '/fw/v', machines: ['pc-i440fx-*'] }));
  assert.is(findDescriptorFirmware('x86_64', Q35, paths)?.code, '/fw/q35');
  assert.is(findDescriptorFirmware('x86_64', PC, paths)?.code, '/fw/pc');
  assert.is(findDescriptorFirmware('x86_64', 'microvm', paths), undefined);
});

test('glob metacharacters other than * are literal (a "." is not "any character")', () => {
  const text = descriptor({ code: '/c', vars: '/v', machines: ['pc-q35-7.2'] });
  assert.ok(readDescriptor(text, 's', 'x86_64', 'pc-q35-7.2'));
  assert.is(readDescriptor(text, 's', 'x86_64', 'pc-q35-7x2'), undefined);
});

test('a descriptor for another architecture is skipped', () => {
  const { paths, write } = dirs(1);
  write(0, '10-arm.json', descriptor({ code: '/fw/arm', vars: '/fw/v', arch: 'aarch64', machines: ['virt-*'] }));
  write(0, '20-x86.json', descriptor({ code: '/fw/x86', vars: '/fw/v' }));
  assert.is(findDescriptorFirmware('x86_64', PC, paths)?.code, '/fw/x86');
  assert.is(findDescriptorFirmware('aarch64', 'virt-99.0', paths)?.code, '/fw/arm');
  assert.is(findDescriptorFirmware('i386', PC, paths), undefined);
});

test('non-UEFI, non-flash, memory-mapped or broken descriptors are skipped', () => {
  assert.is(readDescriptor(descriptor({ code: '/c', vars: '/v', types: ['bios'] }), 's', 'x86_64', PC), undefined);
  assert.is(readDescriptor(descriptor({ code: '/c', device: 'memory' }), 's', 'x86_64', PC), undefined);
  assert.is(readDescriptor(descriptor({ code: '/c', vars: '/v', mode: 'stateless' }), 's', 'x86_64', PC), undefined);
  assert.is(readDescriptor(descriptor({ code: '/c' }), 's', 'x86_64', PC), undefined, 'split mode needs a template');
  assert.is(readDescriptor('{not json', 's', 'x86_64', PC), undefined);
  assert.is(readDescriptor('', 's', 'x86_64', PC), undefined);
  assert.is(readDescriptor('[]', 's', 'x86_64', PC), undefined);
});

test('valid JSON of the wrong shape (null, a number, targets not a list, a null target) is skipped, not a crash', () => {
  const good = JSON.parse(descriptor({ code: '/c', vars: '/v' })) as Record<string, unknown>;
  const texts = ['null', '42', '"text"',
    JSON.stringify({ ...good, targets: { architecture: 'x86_64', machines: ['pc-*'] } }),
    JSON.stringify({ ...good, targets: [null] }),
    JSON.stringify({ ...good, mapping: null }),
    JSON.stringify({ ...good, targets: [{ architecture: 'x86_64', machines: 'pc-*' }] }),
  ];
  for (const text of texts) {
    let result: unknown = 'threw';
    try {
      result = readDescriptor(text, 's', 'x86_64', PC);
    } catch {
      // recorded as 'threw'
    }
    assert.is(result, undefined, `descriptor ${text.slice(0, 80)}`);
  }
  // ...and one such file does not stop the search through the others.
  const { paths, write } = dirs(1);
  write(0, '10-null.json', 'null');
  write(0, '20-good.json', descriptor({ code: '/fw/good', vars: '/fw/v' }));
  let found: unknown = 'threw';
  try {
    found = findDescriptorFirmware('x86_64', PC, paths)?.code;
  } catch {
    // recorded as 'threw'
  }
  assert.is(found, '/fw/good');
});

test('a combined descriptor has no separate template', () => {
  assert.equal(readDescriptor(descriptor({ code: '/fw/OVMF.fd', mode: 'combined' }), 's', 'x86_64', PC), {
    source: 's', code: '/fw/OVMF.fd', varsTemplate: undefined, format: 'raw',
  });
});

test('missing directories and files not ending in .json are ignored', () => {
  const { paths, write } = dirs(1);
  write(0, '10-a.json.bak', descriptor({ code: '/fw/bak', vars: '/fw/v' }));
  write(0, '20-b.json', descriptor({ code: '/fw/b', vars: '/fw/v' }));
  assert.is(findDescriptorFirmware('x86_64', PC, [join(root, 'nope'), ...paths])?.code, '/fw/b');
  assert.is(findDescriptorFirmware('x86_64', PC, [join(root, 'nope')]), undefined);
});

test('the search path is the system, /etc and the user\'s XDG_CONFIG_HOME directories, in that order', () => {
  assert.equal(descriptorDirs({ XDG_CONFIG_HOME: '/home/u/.cfg', HOME: '/home/u' }),
    ['/usr/share/qemu/firmware', '/etc/qemu/firmware', '/home/u/.cfg/qemu/firmware']);
  assert.equal(descriptorDirs({ HOME: '/home/u' }),
    ['/usr/share/qemu/firmware', '/etc/qemu/firmware', '/home/u/.config/qemu/firmware']);
});

test('the descriptors Debian\'s ovmf ships (when installed) give the plain 4M build, not the secure one', () => {
  const found = findDescriptorFirmware('x86_64', Q35, ['/usr/share/qemu/firmware']);
  if (found === undefined) return; // ovmf's descriptors are not installed here; the synthetic tests cover the logic
  assert.ok(!/secboot|ms\.fd|snakeoil/.test(found.code), found.code);
});

test.after(() => {
  rmSync(root, { recursive: true, force: true });
});

test.run();
