/** The help text (stdout for -h, exit 0). */
export function usage(prog: string, defaultBridge: string): string {
  return `Usage: ${prog} [options] [-- qemu-args...]

  Run qemu with tap devices on bridges, virtio disks and optional UEFI, as an
  ordinary user: taps come from the xkvm-helper service, qemu runs in a
  pseudo-terminal whose console is relayed here.

  options:
    -n, --netdev NETDEV     'user' or a bridge name, then ,key=value fields
                            (default: a tap on bridge ${defaultBridge})
    -d, --disk DISK         attach DISK (a path, or file=PATH, then fields)
        --dry-run           print the qemu command line and stop
        --uefi              boot with UEFI firmware (OVMF/AAVMF)
        --uefi-nvram=FILE   UEFI with variables kept in FILE (copied from the
                            firmware's template when FILE does not exist)
        --bios FILE         boot FILE as pflash firmware (not with --uefi)
        --kvm QEMU          qemu binary to run (default: qemu-system-<arch>)
        --no-reboot         exit instead of rebooting when the guest reboots
        --dowait, --no-dowait
                            accepted for compatibility (the pty relay makes
                            signal handling work either way)
    -v, --verbose           say more (repeatable)
    -h, --help              this text

  NETDEV fields: model=MODEL (virtio, e1000, ...), mac=|macaddr= (auto: let
  qemu choose; random; full or partial, padded from 52:54:00:12:34, e.g. :05),
  anything else goes to -device when MODEL has that property, else to -netdev.
  queues=N (1 to 16) on a bridge asks the helper for a multi-queue tap (within
  the admin's max-queues; add mq=on,vectors=2N+2 for the guest to use them).
  Where the admin set mac-lock for you, the tap only passes frames from the
  guest's MAC: mac=auto then becomes a random 52:54:00 MAC (-v says which).

  DISK fields: file=, driver=, if=virtio|scsi, id=, fmt=|format=, serial=,
  wwn=, bus=,unit= or index=, file.locking= (kept only when qemu has file
  locking; _QEMU_SUPPORTS_FILE_LOCKING=true|false overrides the probe),
  anything else to -device when the driver has that property, else to -drive.

  Every VM gets a virtio-rng fed from the host's /dev/urandom.

  examples:
    ${prog} --netdev br0,macaddr=:05 -- -m 512 -nographic
    ${prog} --netdev user,mac=random --netdev br1,model=e1000 -- -curses
    ${prog} --netdev user --disk disk1.qcow2 --uefi-nvram=vars.fd
    ${prog} tap-control make-nics br0      (for scripts; see README)
`;
}
