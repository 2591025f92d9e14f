/**
 * xkvm-bridge-helper's arguments, qemu's bridge-helper convention (docs/fd-handoff.md 2(a)):
 * `--use-vnet`, `--br=BRIDGE`, `--fd=N`, each at most once and in any order (qemu writes
 * `--use-vnet --fd=N --br=BR`, libvirt `[--use-vnet] --br=BR --fd=N`); --br and --fd are
 * required; anything else is refused.
 */
import { isValidIfname, IFNAME_RULE } from '../../../shared/src/protocol/names.js';
import { ClientError } from '../errors.js';

export interface BridgeHelperArgs {
  bridge: string;
  /** The Unix stream socket qemu (or libvirt) reads the tap's fd from. */
  fd: number;
  /** Accepted; the tap always has a vnet header, and qemu probes for it. */
  useVnet: boolean;
}

const BRIDGE_HELPER_USAGE = 'usage: xkvm-bridge-helper [--use-vnet] --br=BRIDGE --fd=N (run by qemu or libvirt, not by hand)';

function usage(why: string): ClientError {
  return new ClientError('USAGE', `${why}; ${BRIDGE_HELPER_USAGE}`);
}

export function parseBridgeHelperArgs(argv: readonly string[]): BridgeHelperArgs {
  let bridge: string | undefined;
  let fd: number | undefined;
  let useVnet = false;
  const seen = new Set<string>();
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? undefined : arg.slice(eq + 1);
    if (key !== '--use-vnet' && key !== '--br' && key !== '--fd') throw usage(`unknown argument '${arg}'`);
    if (seen.has(key)) throw usage(`${key} given twice`);
    seen.add(key);
    if (key === '--use-vnet') {
      if (value !== undefined) throw usage('--use-vnet takes no value');
      useVnet = true;
    } else if (key === '--br') {
      if (value === undefined || !isValidIfname(value)) throw usage(`--br= must name a bridge (${IFNAME_RULE}), got '${value ?? ''}'`);
      bridge = value;
    } else {
      if (value === undefined || !/^(0|[1-9][0-9]{0,9})$/.test(value) || Number(value) > 0x7fff_ffff) {
        throw usage(`--fd= must be a file descriptor number, got '${value ?? ''}'`);
      }
      fd = Number(value);
    }
  }
  if (bridge === undefined) throw usage('--br=BRIDGE is missing');
  if (fd === undefined) throw usage('--fd=N is missing');
  return { bridge, fd, useVnet };
}
