/**
 * Launch for real: taps from the helper (one session for the VM's lifetime), the nvram file,
 * then qemu in a pty. Anything created before qemu starts is undone if a later step fails.
 */
import { unlinkSync } from 'node:fs';
import { ClientError } from '../errors.js';
import { copyNvramTemplate } from '../firmware/nvram.js';
import type { TapSession } from '../helper/session.js';
import type { Logger } from '../log.js';
import { nicRequests, qemuArgv, withChosenMacs, type LaunchPlan } from '../plan.js';
import { shellJoin } from '../qemu/quote.js';
import { runInPty } from './pty.js';
import { randomMac } from '../net/mac.js';

export async function run(initial: LaunchPlan, log: Logger): Promise<number> {
  let plan = initial;
  const nics = nicRequests(plan);
  let session: TapSession | undefined;
  let nvramCreated: string | undefined;
  try {
    if (nics.length > 0) {
      log.debug(1, `asking the helper for taps on: ${nics.map((n) => n.bridge).join(' ')}`);
      // Only bridged runs need the helper client (and msgpack): load it only for them.
      const { makeNics } = await import('../helper/session.js');
      const made = await makeNics(nics, 'session', undefined, {
        // mac-lock: the helper must know the guest's MAC, so mac=auto becomes one chosen here.
        chooseMac: (_index, bridge) => {
          const mac = randomMac();
          log.debug(1, `${bridge} is under mac-lock for you: mac=auto becomes ${mac}`);
          return mac;
        },
      });
      session = made;
      plan = withChosenMacs(plan, made.asked);
      log.debug(1, `taps: ${made.nics.map((n) => `${n.tap}:${n.type} on ${n.bridge}`).join(', ')}`);
    }
    if (plan.nvramCopy !== undefined) {
      copyNvramTemplate(plan.nvramCopy.from, plan.nvramCopy.to);
      nvramCreated = plan.nvramCopy.to;
      log.debug(1, `copied ${plan.nvramCopy.from} to ${plan.nvramCopy.to}`);
    }
  } catch (error) {
    session?.connection.close();
    throw error;
  }

  const taps: Array<string | undefined> = [];
  let k = 0;
  for (const net of plan.nets) taps.push(net.connection === 'user' ? undefined : session!.nics[k++]!.tap);
  const argv = qemuArgv(plan, taps);
  log.debug(1, shellJoin(argv));

  session?.connection.onLost((error) => {
    log.info(`warning: ${error.message}; the VM keeps its taps`);
    // Give a restarted helper the chance to adopt this session from its record.
    setTimeout(() => {
      void import('../helper/session.js').then(({ wakeHelper }) => wakeHelper(session!.location)).then((woke) => log.debug(1, woke ? 'a new helper was started' : 'no helper could be reached'));
    }, 1000).unref();
  });
  let status: number;
  try {
    status = await runInPty(argv, {
      onSignal: (signal) => log.debug(1, `${signal}: stopping qemu`),
      onStart: (pid) => log.debug(1, `qemu pid ${pid}`),
    });
  } catch (error) {
    if (nvramCreated !== undefined) {
      try {
        unlinkSync(nvramCreated);
      } catch {
        // leave it
      }
    }
    throw new ClientError('RUN', `cannot start ${argv[0]}: ${(error as Error).message}`, { cause: error });
  } finally {
    session?.connection.close();
  }
  return status;
}
