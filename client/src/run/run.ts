import type { LaunchOptions } from '../cli/options.js';
import { ClientError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LaunchPlan } from '../plan.js';

export async function run(_plan: LaunchPlan, _opts: LaunchOptions, _log: Logger): Promise<number> {
  throw new ClientError('RUN', 'not yet');
}
