/**
 * Turn --disk specs into -drive/-device pairs the reference's way: a bare existing path or
 * file= names the image, driver=/if= choose the device, fmt=/format= the format (else
 * qemu-img's answer), serial= (else wwn=, else the file's name), bus=/unit= or index= (else
 * index = position); other fields go to -device when the driver has that property, else -drive.
 */
import { statSync, type Stats } from 'node:fs';
import { basename } from 'node:path';
import { ClientError } from '../errors.js';
import { splitFields } from '../net/netdev.js';
import { isDeviceOption, type DeviceProber } from '../qemu/probe.js';
import type { FormatDetector } from './image-format.js';

export interface DiskContext {
  defaultDriver: string;
  prober: DeviceProber;
  detectFormat: FormatDetector;
  /**
   * Whether qemu has file locking, as `_QEMU_SUPPORTS_FILE_LOCKING` says (true/false);
   * undefined: ask qemu (virtio-blk has `share-rw` exactly when it does).
   */
  fileLocking?: boolean | undefined;
  /** Say something at -v levels (file.locking dropped, ...). */
  debug?: (level: number, message: string) => void;
  stat?: (path: string) => Stats | undefined;
}

interface DiskSpec {
  spec: string;
  index: number;
  tokens: string[];
  file: string;
  driver: string;
  id: string;
  format: string | undefined;
  serial: string | undefined;
  wwn: string | undefined;
  bus: string | undefined;
  unit: string | undefined;
  indexOpt: string | undefined;
  isImageFile: boolean;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** qemu protocol filenames (nbd:, nbd://, iscsi://, json:{...}) are not local paths. */
function isProtocolName(file: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/.test(file) && !file.startsWith('/');
}

const KEYS_TAKEN = ['id=', 'if=', 'driver=', 'file=', 'fmt=', 'format=', 'serial=', 'bus=', 'unit=', 'index='];

function readSpec(spec: string, index: number, ctx: DiskContext): DiskSpec {
  const stat = ctx.stat ?? statOrUndefined;
  const tokens = splitFields(spec);
  const bad = (what: string): ClientError => new ClientError('BAD_DISK', `--disk '${spec}': ${what}`);
  if (tokens.includes('')) throw bad('empty field (fields are separated by single commas)');
  let file = '';
  let bareFile = false;
  let driver = '';
  let id = `disk${String(index).padStart(2, '0')}`;
  let format: string | undefined;
  let serial: string | undefined;
  let wwn: string | undefined;
  let bus: string | undefined;
  let unit: string | undefined;
  let indexOpt: string | undefined;
  for (const token of tokens) {
    if (!token.includes('=') && file === '') {
      const st = stat(token);
      if (st?.isFile() || st?.isBlockDevice()) { file = token; bareFile = true; }
    }
    const eq = token.indexOf('=');
    const key = eq === -1 ? token : token.slice(0, eq);
    const value = eq === -1 ? '' : token.slice(eq + 1);
    switch (eq === -1 ? token : `${key}=`) {
      case 'driver=': driver = value; break;
      case 'if=':
        if (value === 'virtio') driver = 'virtio-blk';
        else if (value === 'scsi') driver = 'scsi-hd';
        else throw bad(`if=${value} is not supported: use if=virtio or if=scsi (firmware goes in --bios or --uefi)`);
        break;
      case 'floppy': throw bad('floppy disks are not supported: use if=virtio or if=scsi');
      case 'id=': id = value; break;
      case 'file=': file = value; bareFile = false; break;
      case 'fmt=': case 'format=': format = value; break;
      case 'serial=': serial = value; break;
      case 'wwn=': wwn = value; break;
      case 'bus=': bus = value; break;
      case 'unit=': unit = value; break;
      case 'index=': indexOpt = value; break;
      default: break;
    }
  }
  if (file === '') {
    throw bad('no disk image in it: name an existing file (a bare path or file=PATH)');
  }
  const st = isProtocolName(file) && !bareFile ? undefined : stat(file);
  if (!isProtocolName(file) && st === undefined) throw bad(`the disk image '${file}' does not exist`);
  if (st !== undefined && !st.isFile() && !st.isBlockDevice()) throw bad(`'${file}' is not a file or block device`);
  if (format === '') throw bad('fmt=/format= needs a format name (e.g. qcow2, raw)');
  if (id === '') throw bad('id= needs a value');
  if ((bus || unit) && indexOpt) throw bad('bus=/unit= and index= cannot be given together: use one or the other');
  if (unit && !bus) throw bad('unit= needs bus= (or use index=)');
  return {
    spec, index, tokens, file, id, format, serial, wwn, bus, unit, indexOpt,
    driver: driver || ctx.defaultDriver,
    isImageFile: st?.isFile() ?? false,
  };
}

function assemble(disk: DiskSpec, format: string, ctx: DiskContext): string[] {
  const { tokens, file, driver, id } = disk;
  // As in the reference, an empty serial= means the default.
  const serial = disk.serial || disk.wwn || basename(file);
  let where: string;
  if (disk.bus) where = `bus=${disk.bus},unit=${disk.unit || String(disk.index)}`;
  else where = `index=${disk.indexOpt || String(disk.index)}`;
  const drive = [`file=${file}`, `id=${id}`, 'if=none', `format=${format}`, where];
  const device = [driver, `drive=${id}`];
  if (serial !== '') device.push(`serial=${serial}`);
  for (const token of tokens) {
    if (token === file || KEYS_TAKEN.some((k) => token.startsWith(k))) continue;
    if (token.startsWith('wwn=')) {
      if (!isDeviceOption(ctx.prober, driver, token)) {
        throw new ClientError('BAD_DISK', `--disk '${disk.spec}': wwn= needs a disk device with a wwn property (e.g. if=scsi); ${driver} has none`);
      }
      device.push(token);
      continue;
    }
    if (token.startsWith('file.locking=') && !hasFileLocking(ctx)) {
      ctx.debug?.(2, `qemu has no file locking: dropping '${token}' from: ${disk.spec}`);
      continue;
    }
    if (isDeviceOption(ctx.prober, driver, token)) device.push(token);
    else drive.push(token);
  }
  return ['-drive', drive.join(','), '-device', device.join(',')];
}

function hasFileLocking(ctx: DiskContext): boolean {
  return ctx.fileLocking ?? isDeviceOption(ctx.prober, 'virtio-blk', 'share-rw');
}

/** All disks' -drive/-device arguments; formats of several images are asked for at once. */
export async function planDisks(specs: readonly string[], ctx: DiskContext): Promise<string[]> {
  const disks = specs.map((spec, i) => readSpec(spec, i, ctx));
  const formats = await Promise.all(
    disks.map((d) => (d.format !== undefined ? d.format : d.isImageFile ? ctx.detectFormat(d.file) : 'raw')),
  );
  return disks.flatMap((disk, i) => assemble(disk, formats[i]!, ctx));
}
