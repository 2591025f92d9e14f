/**
 * The helper's memory: peak RSS (VmHWM) of a socket-activated helper after 1000 requests (50
 * that make and remove a tap, 950 refused by the policy), then whether it is gone after its
 * idle timeout.
 */
import { existsSync, readFileSync } from 'node:fs';
import { openConnection } from '../../client/src/helper/connection.js';
import type { Netns } from '../support/netns.js';
import { makeScratch, startActivatedHelper, stop } from '../support/helper-proc.js';
import { waitFor } from '../support/wait.js';

export interface MemoryFigures {
  peakRssMiB: number;
  goneAfterIdle: boolean;
  idleSeconds: number;
}

function helperPid(activatorPid: number): number {
  // systemd-socket-activate execs the helper in place: same pid.
  return activatorPid;
}

export async function benchHelperMemory(ns: Netns): Promise<MemoryFigures> {
  const scratch = makeScratch('mem');
  const idleSeconds = 2;
  const config = scratch.policy(['allow br0 root', 'max-taps 64']);
  // One connection with 19 refusals in a row: the helper would close it after 8 (--max-refusals).
  const activated = await startActivatedHelper(ns, { config, stateDir: scratch.state, socket: scratch.socket, idleSeconds, args: ['--max-refusals', '0'] });
  try {
    const location = { kind: 'socket' as const, path: scratch.socket, from: 'XKVM_HELPER_SOCKET' as const };
    const connection = await openConnection(location);
    for (let i = 0; i < 1000; i++) {
      const bridges = i % 20 === 0 ? ['br0'] : ['denied0'];
      const reply = await connection.request({ v: 1, op: 'make-nics', bridges, lifetime: 'persistent' });
      if (reply.ok && 'nics' in reply) ns.ip('link', 'del', 'dev', reply.nics[0]!.tap);
    }
    const pid = helperPid(activated.pid);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const peakRssMiB = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
    connection.close();
    const gone = await waitFor(() => activated.exit() !== undefined || !existsSync(`/proc/${pid}/status`), (idleSeconds + 3) * 1000, { what: 'the idle helper to exit' })
      .then(() => true, () => false);
    return { peakRssMiB, goneAfterIdle: gone, idleSeconds };
  } finally {
    await stop(activated);
    scratch.remove();
  }
}
