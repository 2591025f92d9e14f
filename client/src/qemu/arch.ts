/** Per-architecture defaults, as the reference picks them from `uname -m`, plus aarch64. */
export interface ArchProfile {
  /** `uname -m` value this profile was chosen for. */
  machine: string;
  /** Firmware descriptor architecture name (QEMU firmware.json "architecture"). */
  firmwareArch: string;
  qemu: string;
  /** Debian package that ships `qemu`, when known. */
  qemuPackage: string | undefined;
  netModel: string;
  scsiBus: string;
  /** The virtio-rng device model (upstream xkvm adds one by default). */
  rngDevice: string;
  /** Arguments that come right after the accelerator. */
  archArgs(kvm: boolean): string[];
  /** The UEFI firmware package to suggest. */
  firmwarePackage: string;
}

interface Defaults {
  /** DEF_NETMODEL, as the reference honours it. */
  netModel?: string | undefined;
}

export function archProfile(machine: string, defaults: Defaults = {}): ArchProfile {
  const base = {
    machine,
    firmwareArch: machine,
    qemu: `qemu-system-${machine}`,
    qemuPackage: undefined as string | undefined,
    netModel: defaults.netModel || 'virtio-net-pci',
    scsiBus: 'virtio-scsi-pci',
    rngDevice: 'virtio-rng-pci',
    archArgs: (): string[] => [],
    firmwarePackage: 'ovmf',
  };
  if (/^i.86$/.test(machine)) {
    return { ...base, firmwareArch: 'i386', qemu: 'qemu-system-i386', qemuPackage: 'qemu-system-x86' };
  }
  switch (machine) {
    case 'x86_64':
      return { ...base, qemuPackage: 'qemu-system-x86' };
    case 's390x':
      return {
        ...base,
        qemuPackage: 'qemu-system-misc',
        netModel: defaults.netModel || 'virtio-net-ccw',
        scsiBus: 'virtio-scsi-ccw',
        rngDevice: 'virtio-rng-ccw',
        firmwarePackage: '(none: s390x has no UEFI)',
      };
    case 'aarch64':
      return {
        ...base,
        qemuPackage: 'qemu-system-arm',
        archArgs: (kvm: boolean) => ['-machine', 'virt', '-cpu', kvm ? 'host' : 'max'],
        firmwarePackage: 'qemu-efi-aarch64',
      };
    default:
      if (machine.startsWith('ppc64')) {
        return {
          ...base,
          firmwareArch: 'ppc64',
          qemu: 'qemu-system-ppc64',
          qemuPackage: 'qemu-system-ppc',
          // The reference ignores DEF_NETMODEL here.
          netModel: 'virtio-net-pci',
          archArgs: () => ['-machine', 'pseries,usb=off', '-device', 'spapr-vscsi'],
          firmwarePackage: '(none: pseries boots SLOF)',
        };
      }
      return base;
  }
}
