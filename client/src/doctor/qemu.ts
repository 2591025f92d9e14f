/** The qemu binary this host would run, and the firmware it needs: the BIOS, the NIC's ROM, UEFI for --uefi. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { machineTypeFor, planFirmware } from '../firmware/firmware.js';
import { archProfile } from '../qemu/arch.js';
import { requireQemu } from '../qemu/binary.js';
import type { Finding } from './finding.js';

/** qemu's firmware folders (`qemu -L help`), in its search order; empty when it cannot say. */
function dataDirs(qemu: string): Promise<string[]> {
  return new Promise((resolve) => {
    execFile(qemu, ['-L', 'help'], { encoding: 'utf8', timeout: 10_000 }, (error, stdout) => {
      resolve(error === null ? stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('/')) : []);
    });
  });
}

function findIn(dirs: readonly string[], file: string): string | undefined {
  return dirs.map((d) => join(d, file)).find((p) => existsSync(p));
}

/** `nics`: how many NICs the VM would have (their ROM is needed then). */
export async function qemuFindings(machine: string, nics: number): Promise<Finding[]> {
  const arch = archProfile(machine);
  let qemu: string;
  try {
    qemu = requireQemu(arch.qemu, arch.qemuPackage);
  } catch (error) {
    return [{ level: 'fail', subject: 'qemu', text: (error as Error).message.split(': ')[0] ?? arch.qemu, fix: (error as Error).message.split(': ').slice(1).join(': ') || undefined }];
  }
  const out: Finding[] = [{ level: 'ok', subject: 'qemu', text: qemu }];
  const dirs = await dataDirs(qemu);
  if (dirs.length === 0) {
    out.push({ level: 'warn', subject: 'firmware', text: `${qemu} -L help names no firmware folders: cannot check its firmware`, fix: 'reinstall qemu' });
    return out;
  }
  if (machine === 'x86_64' || /^i.86$/.test(machine)) {
    const bios = findIn(dirs, 'bios-256k.bin');
    out.push(bios !== undefined ? { level: 'ok', subject: 'firmware', text: `BIOS ${bios}` }
      : { level: 'fail', subject: 'firmware', text: `no BIOS (bios-256k.bin) in ${dirs.join(', ')}`, fix: 'apt-get install seabios' });
    if (nics > 0) {
      const rom = findIn(dirs, 'efi-virtio.rom');
      out.push(rom !== undefined ? { level: 'ok', subject: 'firmware', text: `virtio-net boot ROM ${rom}` }
        : { level: 'fail', subject: 'firmware', text: `no virtio-net boot ROM (efi-virtio.rom) in ${dirs.join(', ')}: qemu refuses to start a VM with a NIC`, fix: 'apt-get install ipxe-qemu' });
    }
  }
  try {
    const uefi = planFirmware({ bios: undefined, uefi: true, nvram: undefined, arch: arch.firmwareArch, machine: machineTypeFor(machine, []), firmwarePackage: arch.firmwarePackage });
    const from = uefi.notes.find((n) => n.startsWith('UEFI firmware from '));
    out.push({ level: 'ok', subject: 'uefi', text: `${from ?? 'UEFI firmware found'} (for --uefi)` });
  } catch (error) {
    out.push({ level: 'warn', subject: 'uefi', text: `no UEFI firmware: --uefi would fail (${(error as Error).message})`, fix: `apt-get install ${arch.firmwarePackage}` });
  }
  return out;
}
