/**
 * Launch for real: taps from the helper, the nvram file, then qemu in a pty. Anything created
 * before qemu starts is undone if a later step fails. The taps come as file descriptors by
 * default (fd handoff: qemu inherits them, and the kernel removes each tap when qemu exits,
 * whoever else died); XKVM_HANDOFF=name asks for named session taps instead (the helper removes
 * them when this client's connection ends).
 */
import { unlinkSync } from 'node:fs';
import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import { ClientError } from '../errors.js';
import { copyNvramTemplate } from '../firmware/nvram.js';
import type { FdTaps, TapSession } from '../helper/session.js';
import { closeFds } from '../native/fdpass.js';
import type { Logger } from '../log.js';
import { nicRequests, qemuArgv, withChosenMacs, type LaunchPlan, type TapArg } from '../plan.js';
import { shellJoin } from '../qemu/quote.js';
import { runInPty } from './pty.js';
import { randomMac } from '../net/mac.js';

/** How the taps are handed over: `XKVM_HANDOFF` = fd (the default) or name. */
function handoffFrom(env: NodeJS.ProcessEnv): 'fd' | 'name' {
  const value = env['XKVM_HANDOFF'];
  if (value === undefined || value === '' || value === 'fd') return 'fd';
  if (value === 'name') return 'name';
  throw new ClientError('USAGE', `XKVM_HANDOFF must be 'fd' (taps as file descriptors, the default) or 'name' (named session taps), got '${escapeForTerminal(value)}'`);
}

export async function run(initial: LaunchPlan, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let plan = initial;
  const nics = nicRequests(plan);
  const handoff = handoffFrom(env);
  let session: TapSession | undefined;
  let fdTaps: FdTaps | undefined;
  let nvramCreated: string | undefined;
  try {
    if (nics.length > 0) {
      log.debug(1, `asking the helper for taps on: ${nics.map((n) => n.bridge).join(' ')} (handoff by ${handoff})`);
      // Only bridged runs need the helper client (and msgpack): load it only for them.
      const { makeFdNics, makeNics } = await import('../helper/session.js');
      const options = {
        // mac-lock: the helper must know the guest's MAC, so mac=auto becomes one chosen here.
        chooseMac: (_index: number, bridge: string): string => {
          const mac = randomMac();
          log.debug(1, `${bridge} is under mac-lock for you: mac=auto becomes ${mac}`);
          return mac;
        },
      };
      const made = handoff === 'fd' ? (fdTaps = await makeFdNics(nics, undefined, options)) : (session = await makeNics(nics, 'session', undefined, options));
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
    if (fdTaps !== undefined) {
      closeFds(fdTaps.fds.flat());
      fdTaps.connection.close();
    }
    throw error;
  }

  const taps: Array<TapArg | undefined> = [];
  let k = 0;
  for (const net of plan.nets) {
    if (net.connection === 'user') taps.push(undefined);
    else taps.push(fdTaps !== undefined ? fdTaps.fds[k++]! : session!.nics[k++]!.tap);
  }
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
      // Handed to qemu at the same numbers, then closed here: the taps are qemu's alone.
      inheritFds: fdTaps?.fds.flat() ?? [],
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
    fdTaps?.connection.close();
  }
  return status;
}
