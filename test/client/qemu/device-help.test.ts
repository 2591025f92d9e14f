import { spawnSync } from 'node:child_process';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { parseDeviceHelp } from '../../../client/src/qemu/device-help.js';

const QEMU = 'qemu-system-x86_64';

/** What the reference does with the same text: sed -e "s,[^.]*[.],," -e 's,=.*,,' then word splitting. */
function referenceParse(output: string): string[] {
  return output.split('\n').flatMap((line) => line.replace(/^[^.]*\./, '').replace(/=.*/, '').split(/\s+/)).filter((w) => w !== '');
}

test('real qemu output for virtio-net-pci: addr, mac, romfile and bootindex are all found', () => {
  const r = spawnSync(QEMU, ['-device', 'virtio-net-pci,help'], { encoding: 'utf8', env: { ...process.env, LANG: 'C', LC_ALL: 'C' } });
  assert.is(r.error, undefined, `cannot run ${QEMU} (apt-get install qemu-system-x86)`);
  assert.is(r.status, 0, r.stderr);
  const names = parseDeviceHelp(r.stdout);
  for (const name of ['addr', 'mac', 'romfile', 'bootindex', 'netdev', 'mq']) assert.ok(names.includes(name), `${name} missing from ${names.join(' ')}`);
  // The header line is not a property, and no name carries the type or description.
  assert.not.ok(names.includes('virtio-net-pci'));
  assert.ok(names.every((n) => /^[A-Za-z0-9_.-]+$/.test(n)), names.join(' '));
  // The reference's sed parse loses addr, whose description holds a dot ("example: 06.0 or 06").
  assert.not.ok(referenceParse(r.stdout).includes('addr'), 'qemu\'s addr description no longer holds a dot: the regression check proves nothing');
});

test('a synthetic qemu 7 listing: names before "=", whatever the description holds', () => {
  const sample = [
    'virtio-blk-pci options:',
    '  addr=<int32>           - Slot and optional function number, example: 06.0 or 06 (default: -1)',
    '  bootindex=<int32>',
    '  drive=<str>            - Node name or ID of a block device to use as a backend',
    '  share-rw=<bool>        -  (default: false)',
    '  x-disable-legacy-check=<bool> -  (default: false)',
    '  logical_block_size=<size> - A power of two between 512 B and 2 MiB (default: 0)',
    '  serial=<str>',
    '  weird=<str>            - a=b=c. d.e',
    '',
  ].join('\n');
  assert.equal(parseDeviceHelp(sample), ['addr', 'bootindex', 'drive', 'share-rw', 'x-disable-legacy-check', 'logical_block_size', 'serial', 'weird']);
});

test('lines that are not properties yield nothing', () => {
  assert.equal(parseDeviceHelp(''), []);
  assert.equal(parseDeviceHelp('There are no options for foo.\n'), []);
  assert.equal(parseDeviceHelp('qemu-system-x86_64: -device nosuch,help: Device \'nosuch\' not found\n'), []);
  assert.equal(parseDeviceHelp('virtio-net-pci options:\nno-indent=<str>\n'), []);
});

test('CRLF line ends do not leak into names', () => {
  assert.equal(parseDeviceHelp('x options:\r\n  mac=<str>\r\n  addr=<int32> - a.b\r\n'), ['mac', 'addr']);
});

test.run();
