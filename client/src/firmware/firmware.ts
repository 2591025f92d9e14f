/**
 * Firmware arguments: --bios FILE as pflash (readonly=on when the user cannot write FILE); --uefi from a QEMU firmware descriptor, else the
 * well-known OVMF/AAVMF paths (4M builds first); --uefi-nvram FILE keeps variables in FILE,
 * copied from the template at launch when missing (never during --dry-run).
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import { ClientError } from '../errors.js';
import { findDescriptorFirmware, type FlashFirmware } from './descriptors.js';

export interface FirmwarePlan {
  args: string[];
  /** A template to copy to the nvram file before launch. */
  nvramCopy?: { from: string; to: string };
  /** Lines to show at -v. */
  notes: string[];
}

const FALLBACKS: Record<string, Array<{ code: string; vars?: string }>> = {
  x86_64: [
    { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
    { code: '/usr/share/OVMF/OVMF_CODE.fd', vars: '/usr/share/OVMF/OVMF_VARS.fd' },
    { code: '/usr/share/ovmf/OVMF.fd' },
  ],
  aarch64: [{ code: '/usr/share/AAVMF/AAVMF_CODE.fd', vars: '/usr/share/AAVMF/AAVMF_VARS.fd' }],
};
FALLBACKS['i386'] = FALLBACKS['x86_64']!;

/** A concrete machine type name for descriptor matching: qemu's default for the arch, or -machine/-M. */
export function machineTypeFor(arch: string, passthrough: readonly string[]): string {
  let given: string | undefined;
  for (let i = 0; i < passthrough.length - 1; i++) {
    if (passthrough[i] !== '-machine' && passthrough[i] !== '-M') continue;
    // "-machine q35,smm=on" or "-machine type=q35,..."; "-machine accel=tcg" names no type.
    const fields = passthrough[i + 1]!.split(',');
    const named = fields[0] !== undefined && fields[0] !== '' && !fields[0].includes('=') ? fields[0]
      : fields.find((f) => f.startsWith('type='))?.slice('type='.length);
    if (named) given = named;
  }
  if (arch === 'aarch64') given ??= 'virt';
  given ??= 'pc';
  const aliases: Record<string, string> = { pc: 'pc-i440fx-99.0', q35: 'pc-q35-99.0', virt: 'virt-99.0' };
  return aliases[given] ?? given;
}

function findUefi(arch: string, machine: string, exists: (p: string) => boolean): FlashFirmware | undefined {
  const described = findDescriptorFirmware(arch, machine, undefined,
    (fw) => exists(fw.code) && (fw.varsTemplate === undefined || exists(fw.varsTemplate)));
  if (described !== undefined) return described;
  for (const candidate of FALLBACKS[arch] ?? []) {
    if (exists(candidate.code) && (candidate.vars === undefined || exists(candidate.vars))) {
      return { source: candidate.code, code: candidate.code, varsTemplate: candidate.vars, format: 'raw' };
    }
  }
  return undefined;
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export interface FirmwareRequest {
  bios: string | undefined;
  uefi: boolean;
  nvram: string | undefined;
  arch: string;
  machine: string;
  firmwarePackage: string;
}

export function planFirmware(req: FirmwareRequest, exists: (p: string) => boolean = existsSync): FirmwarePlan {
  if (req.bios !== undefined) {
    if (!exists(req.bios)) throw new ClientError('FIRMWARE', `--bios '${req.bios}' does not exist`);
    // As the newest upstream xkvm: firmware the user cannot write is attached read-only (qemu
    // would otherwise fail to open it read-write).
    const readonly = !writable(req.bios);
    return {
      args: ['-drive', `if=pflash,format=raw,file=${req.bios}${readonly ? ',readonly=on' : ''}`],
      notes: readonly ? [`--bios ${escapeForTerminal(req.bios)}: not writable by you, attached with readonly=on`] : [],
    };
  }
  if (!req.uefi) return { args: [], notes: [] };
  const notes: string[] = [];
  const fw = findUefi(req.arch, req.machine, exists);
  const pflash = (file: string, format: string, readonly: boolean): string[] =>
    ['-drive', `if=pflash,format=${format},file=${file}${readonly ? ',readonly=on' : ''}`];

  if (fw === undefined) {
    if (req.nvram !== undefined && exists(req.nvram)) {
      notes.push(`no UEFI firmware found: using ${req.nvram} as firmware code and variables together`);
      return { args: pflash(req.nvram, 'raw', !writable(req.nvram)), notes };
    }
    throw new ClientError('FIRMWARE', `UEFI needs firmware for ${req.arch} and none was found: apt-get install ${req.firmwarePackage}`);
  }
  notes.push(`UEFI firmware from ${fw.source}`);
  // Combined image (code and variables in one file): the file itself is the variable store.
  const template = fw.varsTemplate ?? fw.code;
  const args = fw.varsTemplate === undefined ? [] : pflash(fw.code, fw.format, true);
  if (req.nvram === undefined) {
    notes.push('UEFI without --uefi-nvram: the shared template is used read-only, variables will not persist');
    return { args: [...args, ...pflash(template, fw.format, true)], notes };
  }
  if (!exists(req.nvram)) {
    const dir = dirname(req.nvram);
    if (!isDirectory(dir)) throw new ClientError('NVRAM', `--uefi-nvram '${req.nvram}': the directory ${dir} does not exist`);
    return { args: [...args, ...pflash(req.nvram, fw.format, false)], nvramCopy: { from: template, to: req.nvram }, notes };
  }
  if (isDirectory(req.nvram)) throw new ClientError('NVRAM', `--uefi-nvram '${req.nvram}' is a directory: name the file to keep UEFI variables in`);
  return { args: [...args, ...pflash(req.nvram, fw.format, !writable(req.nvram))], notes };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
