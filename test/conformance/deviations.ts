/**
 * The documented deviations (docs/deviations.md), as rules turning the reference's recorded
 * result into the one this project must give. Generic rules apply to every case; the rest name
 * the cases they cover. A case whose result differs from the reference in any way not stated
 * here fails the conformance test.
 */
/** #1: no usable /dev/kvm → `-accel tcg` in place of `-enable-kvm`. */
export function accelRule(argv: string[], kvm: boolean): string[] {
  if (kvm) return argv;
  return argv.flatMap((w) => (w === '-enable-kvm' ? ['-accel', 'tcg'] : [w]));
}

/**
 * #2–#4 (Debian 12, whose descriptor 60-edk2-x86_64.json names the 4M builds): the 2M OVMF
 * files become the 4M ones, and the short boolean `readonly` becomes `readonly=on`.
 */
export function firmwareRule(argv: string[]): string[] {
  return argv.map((w) => {
    if (!w.startsWith('if=pflash,')) return w;
    return w
      .replace('/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_CODE_4M.fd')
      .replace('/usr/share/OVMF/OVMF_VARS.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd')
      .replace(/,readonly$/, ',readonly=on');
  });
}

/**
 * #22: the virtio-rng device of the newest upstream xkvm, right after the virtio-scsi bus device
 * (these cases run on x86_64: virtio-rng-pci).
 */
export function rngRule(argv: string[]): string[] {
  return argv.flatMap((w, i) => (w.startsWith('virtio-scsi-') && w.endsWith(',id=virtio-scsi-xkvm') && argv[i - 1] === '-device'
    ? [w, '-object', 'rng-random,filename=/dev/urandom,id=objrng0', '-device', 'virtio-rng-pci,rng=objrng0,id=rng0']
    : [w]));
}

export interface CaseDeviation {
  /** Row of docs/deviations.md. */
  row: number;
  /** What this project gives instead. */
  expect:
    | { kind: 'error'; stderr: RegExp }
    /** An edit of the reference's recorded argv (indices are its, before the generic rules). */
    | { kind: 'argv'; edit: (argv: string[]) => string[] }
    | { kind: 'success' };
}

const replaceIn = (pattern: RegExp | string, replacement: string) => (argv: string[]): string[] =>
  argv.map((w) => w.replace(pattern, replacement));

const error = (row: number, stderr: RegExp): CaseDeviation => ({ row, expect: { kind: 'error', stderr } });
const edit = (row: number, fn: (argv: string[]) => string[]): CaseDeviation => ({ row, expect: { kind: 'argv', edit: fn } });

/** Move a field from the -netdev/-drive value (index `from`) to the -device value (index `to`). */
const moveField = (field: string, from: number, to: number) => (argv: string[]): string[] => argv.map((w, i) => {
  if (i === from) return w.split(',').filter((t) => t !== field).join(',');
  if (i === to) return `${w},${field}`;
  return w;
});
const formatGiven = (format: string) => replaceIn(/,format=raw,/, `,format=${format},`);

export const CASE_DEVIATIONS: Record<string, CaseDeviation> = {
  // 6: the user's format= is honoured
  'disk-fmt-qcow2-forced-raw': edit(6, formatGiven('qcow2')),
  'disk-format-qcow2-forced-raw': edit(6, formatGiven('qcow2')),
  // 7: properties whose qemu description holds a dot (addr) are recognised; junk words are not
  'net-devopt-addr-misrouted': edit(7, moveField('addr=0x5', 7, 5)),
  'net-rtl8139-tokens': edit(7, (argv) => argv.map((w, i) => (i === 5 ? 'rtl8139,netdev=net00,addr=0x6,romfile=' : i === 7 ? w.replace(',addr=0x6', '') : w))),
  'disk-addr-misrouted': edit(7, moveField('addr=0x6', 9, 11)),
  'combined-bridge-user-disk-tokens': edit(7, moveField('addr=0x6', 13, 15)),
  'net-bare-word-from-broken-parse': edit(7, (argv) => argv.map((w, i) => (i === 5 ? w.replace(/,or$/, '') : i === 7 ? `${w},or` : w))),
  // 8: if= values the reference cannot handle
  'disk-if-pflash': error(8, /if=pflash is not supported: use if=virtio or if=scsi/),
  'disk-driver-then-if-pflash': error(8, /if=pflash is not supported: use if=virtio or if=scsi/),
  // 9: unit= without bus=
  'disk-unit-alone': error(9, /unit= needs bus=/),
  // 10: a file= that does not exist
  'disk-file-token-missing-file': error(10, /the disk image 'missing\.img' does not exist/),
  // 5: the nvram file must be a file in an existing directory
  'uefi-nvram-is-a-directory': error(5, /--uefi-nvram 'images' is a directory/),
  // 13: an empty bridge name
  'net-empty-name': error(13, /the first field must be 'user' or a bridge name/),
  // 14: --bios that does not exist
  bios: error(14, /--bios 'mybios\.bin' does not exist/),
  'bios-last-one-wins': error(14, /--bios 'b\.bin' does not exist/),
  // 15: a MAC that is not hex octets
  'net-mac-invalid-hex': error(15, /bad MAC address 'zz'/),
  // 17: an unknown device model
  'net-model-unknown-with-token': error(17, /qemu does not know device model 'nosuchnic'/),
  'disk-driver-unknown-with-tokens': error(17, /qemu does not know device model 'nosuchdisk'/),
  // 23: --bios FILE the user cannot write is attached readonly=on (newest upstream)
  'bios-user-cannot-write': edit(23, replaceIn(/^(if=pflash,format=raw,file=vars-ro\.fd)$/, '$1,readonly=on')),
  // 24: _QEMU_SUPPORTS_FILE_LOCKING=false says qemu has no file locking: file.locking= is dropped
  'env-file-locking-false': edit(24, replaceIn(/,file\.locking=off$/, '')),
  // 21: --kvm must name a program that exists, as one word
  'kvm-missing-binary-not-probed': error(21, /\/nonexistent\/qemu does not exist or is not executable/),
  'kvm-value-with-space-is-split': error(21, /qemu-system-x86_64 -S is not installed/),
};

/** `mac=random` draws the last three octets: compare everything else, and their form. */
export const RANDOM_MAC = /mac=52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}/;
export function maskRandomMac(argv: string[]): string[] {
  return argv.map((w) => w.replace(RANDOM_MAC, 'mac=52:54:00:RANDOM'));
}
