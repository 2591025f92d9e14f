/**
 * xkvm-bridge-helper: qemu's and libvirt's bridge helper, under the xkvm policy. qemu (for
 * `-netdev bridge,br=BR,helper=...`) or libvirt (session mode, `bridge_helper` in qemu.conf)
 * runs it with a Unix stream socket as fd N and reads one tap fd from it. It asks the xkvm helper
 * for one tap on BR by fd handoff (same discovery as xkvm: socket, else pkexec), sends the fd on
 * N as qemu-bridge-helper does (one byte 0x00 with one SCM_RIGHTS fd), closes its copy and
 * exits 0. Every failure is one line on stderr (qemu and libvirt show it) and status 1: never 0
 * without the fd, since qemu would then take its own fd 0 as the tap.
 */
import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import { ClientError } from '../errors.js';
import type { HelperLocation } from '../helper/locate.js';
import { closeFds, sendWithFds, unixStreamSocket } from '../native/fdpass.js';
import { parseBridgeHelperArgs } from './args.js';

export interface BridgeHelperEnvironment {
  /** Where the xkvm helper is (default: locateHelper()). */
  location?: HelperLocation;
  /** Where the one line of a failure goes. */
  writeError: (line: string) => void;
}

/** Does the whole job; returns the exit status (0 only once the fd has been sent). */
export async function bridgeHelper(argv: readonly string[], env: BridgeHelperEnvironment): Promise<number> {
  try {
    const args = parseBridgeHelperArgs(argv);
    const kind = unixStreamSocket(args.fd);
    if (kind !== 'yes') {
      throw new ClientError('USAGE', `--fd=${args.fd} is ${kind === 'closed' ? 'not an open file descriptor' : 'not a Unix stream socket'}: ` +
        'qemu or libvirt runs this program with the socket it reads the tap from');
    }
    const { makeFdNics } = await import('../helper/session.js');
    const { locateHelper } = await import('../helper/locate.js');
    // One queue: qemu and libvirt read exactly one fd on this path.
    const taps = await makeFdNics([{ bridge: args.bridge }], env.location ?? locateHelper());
    const fds = taps.fds.flat();
    try {
      await sendWithFds(args.fd, Buffer.from([0]), fds);
    } finally {
      closeFds(fds);
      taps.connection.close();
    }
    return 0;
  } catch (error) {
    const message = error instanceof ClientError ? error.message : `internal error: ${error instanceof Error ? error.message : String(error)}`;
    env.writeError(`xkvm-bridge-helper: ${escapeForTerminal(message)}\n`);
    return 1;
  }
}
