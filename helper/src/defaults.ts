/**
 * The helper's built-in defaults, in one place. Under pkexec these are the only values used
 * (nothing the caller passes can change them).
 */

/** The policy file. */
export const DEFAULT_POLICY_FILE = '/etc/xkvm/helper.conf';
/** Session records, the ledger of created taps and the per-uid locks (ledger/). */
export const DEFAULT_STATE_DIR = '/run/xkvm/sessions';
/** A socket-activated helper exits after this long without connections or adopted sessions. */
export const DEFAULT_IDLE_SECONDS = 60;
/** A socket connection that holds no session taps is closed after this long without a request. */
export const DEFAULT_CONNECTION_IDLE_SECONDS = 5;
/** A connection is closed after this many refused requests in a row. */
export const DEFAULT_MAX_REFUSALS = 8;
/** The PATH of every program the helper runs (each is run by absolute path all the same). */
export const FIXED_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
/** Exactly this environment for every program the helper runs, nothing inherited. */
export const TOOL_ENV: Readonly<Record<string, string>> = Object.freeze({ PATH: FIXED_PATH, LC_ALL: 'C' });
