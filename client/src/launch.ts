/** `xkvm [options] [-- qemu args]`: plan, then either print (--dry-run) or run. */
import { parseLaunchOptions } from './cli/options.js';
import { usage } from './cli/usage.js';
import { stderrLogger } from './log.js';
import { DEFAULT_BRIDGE, defaultEnvironment, makePlan, qemuArgv } from './plan.js';
import { shellJoin } from './qemu/quote.js';

export async function launch(argv: readonly string[], prog: string): Promise<number> {
  const opts = parseLaunchOptions(argv);
  if (opts.help) {
    process.stdout.write(usage(prog, DEFAULT_BRIDGE));
    return 0;
  }
  const log = stderrLogger(opts.verbosity);
  const plan = await makePlan(opts, defaultEnvironment(log.debug));
  for (const note of plan.notes) log.info(note);

  if (opts.dryRun) {
    const bridges = plan.nets.filter((n) => n.connection !== 'user').map((n) => n.connection);
    if (bridges.length > 0) log.debug(1, `would ask the helper for taps on: ${bridges.join(' ')}`);
    if (plan.nvramCopy) log.debug(1, `would copy ${plan.nvramCopy.from} to ${plan.nvramCopy.to}`);
    const taps = plan.nets.map((n, i) => (n.connection === 'user' ? undefined : `dryruntap${i}`));
    process.stderr.write(`${shellJoin(qemuArgv(plan, taps))}\n`);
    return 0;
  }
  const { run } = await import('./run/run.js');
  return run(plan, log);
}
