import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { planDisks, type DiskContext } from '../../../client/src/disk/disk.js';
import { ClientError } from '../../../client/src/errors.js';
import { FakeProber } from '../support/fake-prober.js';

const WITH_LOCKING = {
  'virtio-blk': ['drive', 'serial', 'bootindex', 'share-rw', 'discard_granularity', 'num-queues', 'logical_block_size'],
  'scsi-hd': ['drive', 'serial', 'wwn', 'bootindex', 'share-rw', 'scsi-id', 'lun', 'channel'],
};
const WITHOUT_LOCKING = {
  'virtio-blk': ['drive', 'serial', 'bootindex', 'discard_granularity'],
  'scsi-hd': ['drive', 'serial', 'wwn', 'bootindex'],
};

const dir = mkdtempSync(join(tmpdir(), 'xkvm-disk-test-'));
const A = join(dir, 'a.img');
const B = join(dir, 'b.qcow2');
const SUBDIR = join(dir, 'sub');
writeFileSync(A, 'a');
writeFileSync(B, 'b');
mkdirSync(SUBDIR);

interface Harness extends DiskContext {
  prober: FakeProber;
  detected: string[];
  notes: Array<[number, string]>;
}

function ctx(models: Record<string, string[]> = WITH_LOCKING, format = 'qcow2'): Harness {
  const detected: string[] = [];
  const notes: Array<[number, string]> = [];
  return {
    defaultDriver: 'virtio-blk',
    prober: new FakeProber(models),
    detectFormat: async (path) => {
      detected.push(path);
      return format;
    },
    debug: (level, message) => notes.push([level, message]),
    detected,
    notes,
  };
}

async function badDisk(spec: string, c: DiskContext = ctx()): Promise<ClientError> {
  let caught: unknown;
  try {
    await planDisks([spec], c);
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, ClientError, `'${spec}' was accepted`);
  assert.is((caught as ClientError).code, 'BAD_DISK');
  assert.ok((caught as ClientError).message.includes(`'${spec}'`), 'the message quotes the spec');
  return caught as ClientError;
}

test('a bare existing path is the image: virtio-blk, detected format, index = position, serial = file name', async () => {
  const c = ctx();
  assert.equal(await planDisks([A], c), [
    '-drive', `file=${A},id=disk00,if=none,format=qcow2,index=0`,
    '-device', 'virtio-blk,drive=disk00,serial=a.img',
  ]);
  assert.equal(c.detected, [A]);
});

test('file= names the image the same way', async () => {
  assert.equal(await planDisks([`file=${A}`], ctx()), await planDisks([A], ctx()));
});

test('the format is detected once per image file, and not at all when fmt= or format= is given', async () => {
  const c = ctx();
  const args = await planDisks([A, `${B},fmt=raw`, `file=${B},format=vmdk`, B], c);
  assert.equal(c.detected, [A, B]);
  assert.equal(args.filter((_, i) => i % 4 === 1).map((d) => /format=([^,]*)/.exec(d)?.[1]), ['qcow2', 'raw', 'vmdk', 'qcow2']);
});

test('several disks: ids and indexes follow their positions', async () => {
  const args = await planDisks([A, B], ctx());
  assert.equal(args, [
    '-drive', `file=${A},id=disk00,if=none,format=qcow2,index=0`, '-device', 'virtio-blk,drive=disk00,serial=a.img',
    '-drive', `file=${B},id=disk01,if=none,format=qcow2,index=1`, '-device', 'virtio-blk,drive=disk01,serial=b.qcow2',
  ]);
});

test('driver=, if=virtio and if=scsi choose the device model; the last one wins', async () => {
  const device = async (spec: string): Promise<string> => (await planDisks([spec], ctx()))[3]!;
  assert.is(await device(`${A},driver=scsi-hd`), 'scsi-hd,drive=disk00,serial=a.img');
  assert.is(await device(`${A},if=scsi`), 'scsi-hd,drive=disk00,serial=a.img');
  assert.is(await device(`${A},if=virtio`), 'virtio-blk,drive=disk00,serial=a.img');
  assert.is(await device(`${A},if=scsi,if=virtio`), 'virtio-blk,drive=disk00,serial=a.img');
  assert.is(await device(`${A},if=virtio,driver=scsi-hd`), 'scsi-hd,drive=disk00,serial=a.img');
});

test('the default driver comes from the context (DEF_DISK_DRIVER)', async () => {
  const c = { ...ctx(), defaultDriver: 'scsi-hd' };
  assert.is((await planDisks([A], c))[3], 'scsi-hd,drive=disk00,serial=a.img');
});

test('if=sd, if=mtd, if=pflash, if=ide and a bare floppy are refused, naming the allowed values', async () => {
  for (const spec of [`${A},if=sd`, `${A},if=mtd`, `${A},if=pflash`, `${A},if=ide`, `${A},if=none`, `${A},floppy`]) {
    const error = await badDisk(spec);
    assert.match(error.message, /if=virtio/);
    assert.match(error.message, /if=scsi/);
  }
});

test('id= replaces the drive id on both halves', async () => {
  assert.equal(await planDisks([`${A},id=root`], ctx()), [
    '-drive', `file=${A},id=root,if=none,format=qcow2,index=0`, '-device', 'virtio-blk,drive=root,serial=a.img',
  ]);
});

test('serial= replaces the default serial', async () => {
  assert.is((await planDisks([`${A},serial=ROOT-1`], ctx()))[3], 'virtio-blk,drive=disk00,serial=ROOT-1');
});

test('an empty serial= falls back to the file name, as in the reference', async () => {
  // reference: [ -z "$serial" ] && serial="${file##*/}"  →  serial=a.img
  assert.is((await planDisks([`${A},serial=`], ctx()))[3], 'virtio-blk,drive=disk00,serial=a.img');
});

test('wwn= goes to a device with a wwn property and becomes the default serial', async () => {
  assert.equal(await planDisks([`${A},if=scsi,wwn=0x5000c50015ea71ac`], ctx()), [
    '-drive', `file=${A},id=disk00,if=none,format=qcow2,index=0`,
    '-device', 'scsi-hd,drive=disk00,serial=0x5000c50015ea71ac,wwn=0x5000c50015ea71ac',
  ]);
  assert.is((await planDisks([`${A},if=scsi,wwn=0x5,serial=S`], ctx()))[3], 'scsi-hd,drive=disk00,serial=S,wwn=0x5');
});

test('wwn= on a device without a wwn property is refused, naming the device', async () => {
  const error = await badDisk(`${A},wwn=0x5000c50015ea71ac`);
  assert.match(error.message, /wwn/);
  assert.match(error.message, /virtio-blk/);
});

test('index defaults to the position; index= overrides it', async () => {
  const args = await planDisks([A, `${B},index=5`], ctx());
  assert.match(args[1]!, /,index=0$/);
  assert.match(args[5]!, /,index=5$/);
});

test('bus= without unit= gets unit = position; bus= with unit= keeps it; neither adds index', async () => {
  const args = await planDisks([A, `${B},bus=scsi0.0`, `${A},bus=ide.1,unit=0`], ctx());
  assert.is(args[5], `file=${B},id=disk01,if=none,format=qcow2,bus=scsi0.0,unit=1`);
  assert.is(args[9], `file=${A},id=disk02,if=none,format=qcow2,bus=ide.1,unit=0`);
  assert.is((await planDisks([`${A},bus=scsi0.0`], ctx()))[1], `file=${A},id=disk00,if=none,format=qcow2,bus=scsi0.0,unit=0`);
});

test('bus= (or unit=) together with index= is refused', async () => {
  assert.match((await badDisk(`${A},bus=scsi0.0,index=1`)).message, /index=/);
  assert.match((await badDisk(`${A},bus=scsi0.0,unit=0,index=1`)).message, /index=/);
});

test('unit= without bus= is refused', async () => {
  assert.match((await badDisk(`${A},unit=1`)).message, /bus=/);
});

test('file.locking= is dropped (with a -vv note) when virtio-blk has no share-rw', async () => {
  const c = ctx(WITHOUT_LOCKING);
  const args = await planDisks([`${A},file.locking=off,cache=none`], c);
  assert.is(args[1], `file=${A},id=disk00,if=none,format=qcow2,index=0,cache=none`);
  assert.ok(!args.join(' ').includes('file.locking'));
  assert.is(c.notes.length, 1);
  assert.is(c.notes[0]![0], 2);
  assert.match(c.notes[0]![1], /file\.locking=off/);
});

test('file.locking= is kept on -drive when qemu has file locking', async () => {
  const c = ctx(WITH_LOCKING);
  const args = await planDisks([`${A},file.locking=off`], c);
  assert.is(args[1], `file=${A},id=disk00,if=none,format=qcow2,index=0,file.locking=off`);
  assert.is(args[3], 'virtio-blk,drive=disk00,serial=a.img');
  assert.equal(c.notes, []);
});

test('other fields go to -device when the driver has that property, else to -drive, in order', async () => {
  const args = await planDisks([`${A},cache=none,bootindex=1,aio=native,share-rw=on,discard=unmap,num-queues=2`], ctx());
  assert.is(args[1], `file=${A},id=disk00,if=none,format=qcow2,index=0,cache=none,aio=native,discard=unmap`);
  assert.is(args[3], 'virtio-blk,drive=disk00,serial=a.img,bootindex=1,share-rw=on,num-queues=2');
});

test('the fields the planner consumes never reach -drive or -device twice', async () => {
  const args = await planDisks([`id=x,${A},if=scsi,fmt=raw,serial=s,bus=b,unit=3`], ctx());
  assert.equal(args, [
    '-drive', `file=${A},id=x,if=none,format=raw,bus=b,unit=3`,
    '-device', 'scsi-hd,drive=x,serial=s',
  ]);
});

test('the device properties are asked of the chosen driver', async () => {
  const c = ctx();
  await planDisks([`${A},if=scsi,bootindex=1`], c);
  assert.equal([...new Set(c.prober.asked)], ['scsi-hd']);
});

test('a spec without an existing image is refused', async () => {
  assert.match((await badDisk(join(dir, 'missing.img'))).message, /no disk image/);
  assert.match((await badDisk('cache=none')).message, /no disk image/);
});

test('file= naming a missing file or a directory is refused', async () => {
  assert.match((await badDisk(`file=${join(dir, 'missing.img')}`)).message, /does not exist/);
  assert.match((await badDisk(`file=${SUBDIR}`)).message, /not a file/);
});

test('a protocol name in file= is passed on as raw without looking for a file', async () => {
  const c = ctx();
  const args = await planDisks(['file=nbd://localhost:10809/disk'], c);
  assert.is(args[1], 'file=nbd://localhost:10809/disk,id=disk00,if=none,format=raw,index=0');
  assert.equal(c.detected, []);
});

test('empty fields, empty fmt= and empty id= are refused', async () => {
  assert.match((await badDisk(`${A},,cache=none`)).message, /empty field/);
  assert.match((await badDisk(`${A},fmt=`)).message, /fmt=/);
  assert.match((await badDisk(`${A},id=`)).message, /id=/);
});

test('a format detection failure is passed on', async () => {
  const c: DiskContext = { ...ctx(), detectFormat: async () => { throw new ClientError('BAD_DISK', 'cannot determine the format'); } };
  let caught: unknown;
  try {
    await planDisks([A], c);
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, ClientError);
  assert.match((caught as Error).message, /cannot determine the format/);
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
