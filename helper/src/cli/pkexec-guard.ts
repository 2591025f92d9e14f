/**
 * Under pkexec every argument and every environment variable came from the unprivileged caller
 * (pkexec checks neither): only `--stdio` is accepted, and the environment is emptied before
 * anything else runs, keeping PKEXEC_UID alone, which pkexec itself set; and
 * XKVM_PKEXEC_CLIENT, which only a pkexec'd helper that could not leave its caller's job
 * sets, for the helper it starts in a session of its own (cli/job-control.ts checks that our
 * parent is root before believing it; pkexec passes no such variable from a caller).
 */
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import { FIXED_PATH } from '../defaults.js';

export interface PkexecContext {
  pkexecUid: string;
  /** The client a pkexec'd helper identified and handed over to this one (see above). */
  relayedClient: { pid: number; start: string } | undefined;
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
  const relayed = env['XKVM_PKEXEC_CLIENT'];
  for (const key of Object.keys(env)) delete env[key];
  env['PATH'] = FIXED_PATH;
  if (relayed === undefined) return { pkexecUid, relayedClient: undefined };
  const m = /^([1-9][0-9]{0,9}):(0|[1-9][0-9]{0,19})$/.exec(relayed);
  if (m === null) throw new PkexecRefusal('XKVM_PKEXEC_CLIENT is not PID:START');
  return { pkexecUid, relayedClient: { pid: Number(m[1]), start: m[2]! } };
}
