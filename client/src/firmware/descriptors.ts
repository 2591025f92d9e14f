/**
 * QEMU firmware descriptors (docs/interop/firmware.json): JSON files in /usr/share/qemu/firmware,
 * /etc/qemu/firmware and $XDG_CONFIG_HOME/qemu/firmware; a file name in a later directory
 * overrides the same name in an earlier one, and the lowest name wins.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface FlashFirmware {
  source: string;
  code: string;
  /** The variable-store template; absent for a combined image. */
  varsTemplate: string | undefined;
  format: string;
}

/** Features that need more than a plain machine (SMM, secure boot keys, confidential guests). */
const UNSUITABLE = ['requires-smm', 'secure-boot', 'enrolled-keys', 'amd-sev-es', 'amd-sev-snp', 'intel-tdx'];

/** @internal Exported for tests of the XDG lookup; findDescriptorFirmware searches these by default. */
export function descriptorDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const config = env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config');
  return ['/usr/share/qemu/firmware', '/etc/qemu/firmware', join(config, 'qemu', 'firmware')];
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(name);
}

interface Descriptor {
  'interface-types'?: unknown;
  mapping?: { device?: unknown; mode?: unknown; executable?: { filename?: unknown; format?: unknown }; 'nvram-template'?: { filename?: unknown } };
  targets?: Array<{ architecture?: unknown; machines?: unknown }>;
  features?: unknown;
}

/**
 * The firmware a descriptor offers for `arch` on `machine` (a concrete machine type name), if any.
 * @internal Exported for tests, which feed it descriptor texts; findDescriptorFirmware reads the files.
 */
export function readDescriptor(text: string, source: string, arch: string, machine: string): FlashFirmware | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const d = parsed as Descriptor;
  const types = Array.isArray(d['interface-types']) ? d['interface-types'] : [];
  const features = Array.isArray(d.features) ? d.features : [];
  const mapping = typeof d.mapping === 'object' && d.mapping !== null ? d.mapping : undefined;
  if (!types.includes('uefi') || mapping?.device !== 'flash') return undefined;
  if (features.some((f) => UNSUITABLE.includes(String(f)))) return undefined;
  const mode = mapping.mode ?? 'split';
  if (mode !== 'split' && mode !== 'combined') return undefined;
  const targets: unknown[] = Array.isArray(d.targets) ? d.targets : [];
  const fits = targets.some((t) => typeof t === 'object' && t !== null
    && (t as { architecture?: unknown }).architecture === arch
    && Array.isArray((t as { machines?: unknown }).machines)
    && ((t as { machines: unknown[] }).machines).some((m) => typeof m === 'string' && globMatch(m, machine)));
  if (!fits) return undefined;
  const executable = typeof mapping.executable === 'object' && mapping.executable !== null ? mapping.executable : {};
  const template = typeof mapping['nvram-template'] === 'object' && mapping['nvram-template'] !== null ? mapping['nvram-template'] : {};
  const code = executable.filename;
  const format = executable.format ?? 'raw';
  const vars = template.filename;
  if (typeof code !== 'string' || typeof format !== 'string') return undefined;
  if (mode === 'split' && typeof vars !== 'string') return undefined;
  return { source, code, varsTemplate: typeof vars === 'string' ? vars : undefined, format };
}

/** The first descriptor (by priority) offering usable firmware for arch and machine. */
export function findDescriptorFirmware(
  arch: string,
  machine: string,
  dirs = descriptorDirs(),
  usable: (fw: FlashFirmware) => boolean = () => true,
): FlashFirmware | undefined {
  const byName = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) if (name.endsWith('.json')) byName.set(name, join(dir, name));
  }
  for (const name of [...byName.keys()].sort()) {
    const path = byName.get(name)!;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    const found = readDescriptor(text, path, arch, machine);
    if (found !== undefined && usable(found)) return found;
  }
  return undefined;
}
