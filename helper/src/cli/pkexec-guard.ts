/**
 * Under pkexec every argument and every environment variable came from the unprivileged caller
 * (pkexec checks neither): only `--stdio` is accepted, and the environment is emptied before
 * anything else runs, keeping PKEXEC_UID alone, which pkexec itself set.
 */
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import { FIXED_PATH } from '../defaults.js';

export interface PkexecContext {
  pkexecUid: string;
}

/** Run by pkexec with anything but `--stdio`: refused before anything else happens. */
export class PkexecRefusal extends CodedError<'PKEXEC'> {
  override readonly name = 'PkexecRefusal';

  constructor(message: string) {
    super('PKEXEC', message);
  }
}

export function pkexecGuard(argv: readonly string[], env: NodeJS.ProcessEnv): PkexecContext | undefined {
  const pkexecUid = env['PKEXEC_UID'];
  if (pkexecUid === undefined) return undefined;
  if (argv.length !== 1 || argv[0] !== '--stdio') {
    throw new PkexecRefusal(`under pkexec only "--stdio" is accepted (got ${argv.length === 0 ? 'no arguments' : JSON.stringify(argv)})`);
  }
  for (const key of Object.keys(env)) delete env[key];
  env['PATH'] = FIXED_PATH;
  return { pkexecUid };
}
