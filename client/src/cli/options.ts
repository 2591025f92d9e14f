/** The launcher's options: the reference's set plus --no-reboot, parsed the getopt way. */
import { ClientError } from '../errors.js';
import { getopt, type OptionSpec } from './getopt.js';

/**
 * Order matters for abbreviations (getopt takes the first of equal-kind prefixes).
 * @internal Exported for the test that compares getopt with getopt(1) on these very options.
 */
export const LAUNCH_OPTIONS: readonly OptionSpec[] = [
  { long: 'bios', takesValue: true },
  { long: 'help', short: 'h', takesValue: false },
  { long: 'dowait', takesValue: false },
  { long: 'disk', short: 'd', takesValue: true },
  { long: 'dry-run', takesValue: false },
  { long: 'kvm', takesValue: true },
  { long: 'no-dowait', takesValue: false },
  { long: 'netdev', short: 'n', takesValue: true },
  { long: 'no-reboot', takesValue: false },
  { long: 'uefi', takesValue: false },
  { long: 'uefi-nvram', takesValue: true },
  { long: 'verbose', short: 'v', takesValue: false },
];

export interface LaunchOptions {
  help: boolean;
  netdevs: string[];
  disks: string[];
  dryRun: boolean;
  /** qemu binary given with --kvm. */
  kvm: string | undefined;
  verbosity: number;
  /** --dowait/--no-dowait: accepted for compatibility; the pty makes them unnecessary. */
  dowait: boolean | undefined;
  bios: string | undefined;
  uefi: boolean;
  uefiNvram: string | undefined;
  noReboot: boolean;
  /** Arguments passed to qemu unchanged. */
  passthrough: string[];
}

export function parseLaunchOptions(argv: readonly string[]): LaunchOptions {
  const { options, operands } = getopt(argv, LAUNCH_OPTIONS);
  const result: LaunchOptions = {
    help: false,
    netdevs: [],
    disks: [],
    dryRun: false,
    kvm: undefined,
    verbosity: 0,
    dowait: undefined,
    bios: undefined,
    uefi: false,
    uefiNvram: undefined,
    noReboot: false,
    passthrough: operands,
  };
  for (const { name, value } of options) {
    switch (name) {
      case 'help':
        // Like the reference, help ends option processing where it stands.
        result.help = true;
        return result;
      case 'disk': result.disks.push(value!); break;
      case 'dry-run': result.dryRun = true; break;
      case 'kvm': result.kvm = value!; break;
      case 'netdev': result.netdevs.push(value!); break;
      case 'verbose': result.verbosity += 1; break;
      case 'dowait': result.dowait = true; break;
      case 'no-dowait': result.dowait = false; break;
      case 'bios': result.bios = value!; break;
      case 'uefi': result.uefi = true; break;
      // Like the reference, an empty --uefi-nvram= is plain --uefi.
      case 'uefi-nvram': result.uefi = true; result.uefiNvram = value === '' ? undefined : value!; break;
      case 'no-reboot': result.noReboot = true; break;
      default: throw new ClientError('USAGE', `internal: unhandled option --${name}`);
    }
  }
  if (result.bios !== undefined && result.uefi) {
    throw new ClientError('USAGE', '--uefi (or --uefi-nvram) is incompatible with --bios: choose one firmware');
  }
  if (result.kvm === '') throw new ClientError('USAGE', '--kvm needs a qemu binary name or path, got an empty string');
  return result;
}
