/**
 * The helper's one table of error codes: for every code any of its error families throws, the
 * exit status `xkvm-helper` ends with and the code a request's error reply carries. Errors are
 * recognised by class (a CodedError) and then by this table, never by the text of a message or
 * the shape of a code; a code not in the table, or an error that is not a CodedError, is a bug:
 * exit status 70, INTERNAL on the wire (details go to the log only).
 *
 * The exit statuses are documented in README.md (For admins): 0 success (policy check:
 * allowed), 1 policy check: denied, 2 usage, 3 the policy cannot be used, 4 another error
 * explained in one line, 70 an internal error.
 */
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import type { AuditLogError } from '../audit/audit.js';
import type { AuditQueryError } from '../cli/audit-command.js';
import type { StatusError } from '../cli/status-command.js';
import type { UsageError } from '../cli/args.js';
import type { PkexecRefusal } from '../cli/pkexec-guard.js';
import type { IdentityError } from '../identity/errors.js';
import type { InstallErrorCode } from '../install/errors.js';
import type { AddonError } from '../native/addon.js';
import type { NetErrorCode } from '../net/errors.js';
import type { PolicyErrorCode } from '../policy/errors.js';
import type { LedgerError } from '../records/ledger.js';
import type { StateDirError } from '../records/store.js';
import type { ListenError } from '../transport/listen.js';
import type { UserDbErrorCode } from '../userdb/errors.js';

export const EXIT = { ok: 0, denied: 1, usage: 2, policy: 3, error: 4, internal: 70 } as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/**
 * Every code of every family. Listing the families here makes the table below complete by
 * construction: a code added to a family without a row does not compile.
 */
type HelperErrorCode =
  | ErrorCode
  | NetErrorCode
  | IdentityError['code']
  | UsageError['code']
  | PkexecRefusal['code']
  | ListenError['code']
  | AddonError['code']
  | LedgerError['code']
  | AuditLogError['code']
  | AuditQueryError['code']
  | StatusError['code']
  | StateDirError['code']
  | PolicyErrorCode
  | UserDbErrorCode
  | InstallErrorCode;

interface Row {
  readonly exit: ExitStatus;
  readonly wire: ErrorCode;
}

const { usage, policy, error, internal } = EXIT;
const W = ErrorCode;

const TABLE: { readonly [C in HelperErrorCode]: Row } = {
  // The wire protocol's codes (ProtocolError; NetError throws BAD_NAME, BAD_REQUEST,
  // NO_SUCH_BRIDGE, NOT_OWNER, NO_SUCH_PORT, SYSTEM_ERROR; IdentityError NO_IDENTITY): as themselves.
  BAD_FRAME: { exit: error, wire: W.BadFrame },
  BAD_REQUEST: { exit: error, wire: W.BadRequest },
  BAD_VERSION: { exit: error, wire: W.BadVersion },
  UNKNOWN_OP: { exit: error, wire: W.UnknownOp },
  BAD_NAME: { exit: error, wire: W.BadName },
  DENIED: { exit: error, wire: W.Denied },
  QUOTA: { exit: error, wire: W.Quota },
  NO_SUCH_BRIDGE: { exit: error, wire: W.NoSuchBridge },
  NOT_OWNER: { exit: error, wire: W.NotOwner },
  NO_SUCH_PORT: { exit: error, wire: W.NoSuchPort },
  NO_IDENTITY: { exit: error, wire: W.NoIdentity },
  SYSTEM_ERROR: { exit: error, wire: W.SystemError },
  INTERNAL: { exit: internal, wire: W.Internal },
  // The command line.
  USAGE: { exit: usage, wire: W.Internal },
  PKEXEC: { exit: usage, wire: W.Internal },
  // The policy cannot be used.
  POLICY_SYNTAX: { exit: policy, wire: W.Internal },
  POLICY_IO: { exit: policy, wire: W.Internal },
  POLICY_INCLUDE_LOOP: { exit: policy, wire: W.Internal },
  POLICY_INCLUDE_DEPTH: { exit: policy, wire: W.Internal },
  POLICY_UNSAFE_FILE: { exit: policy, wire: W.Internal },
  // The policy's audit-log is in a directory root must not write to.
  AUDIT_LOG_UNSAFE: { exit: policy, wire: W.Internal },
  // `audit`: the policy names no audit-log, or it cannot be read.
  AUDIT_NO_LOG: { exit: error, wire: W.Internal },
  AUDIT_READ: { exit: error, wire: W.Internal },
  // `status`: not root, or the state cannot be read.
  STATUS_NOT_ROOT: { exit: error, wire: W.Internal },
  STATUS_READ: { exit: error, wire: W.Internal },
  // The user database: a caller whose uid names no user cannot be identified.
  USERDB_NO_SUCH_UID: { exit: error, wire: W.NoIdentity },
  USERDB_NO_SUCH_USER: { exit: error, wire: W.Internal },
  USERDB_BAD_KEY: { exit: error, wire: W.Internal },
  USERDB_IO: { exit: error, wire: W.Internal },
  USERDB_LOOKUP_FAILED: { exit: error, wire: W.Internal },
  // install and uninstall.
  INSTALL_NOT_ROOT: { exit: error, wire: W.Internal },
  INSTALL_BAD_GROUP: { exit: error, wire: W.Internal },
  INSTALL_UNSAFE_CODE: { exit: error, wire: W.Internal },
  INSTALL_BAD_PATH: { exit: error, wire: W.Internal },
  INSTALL_TEMPLATE: { exit: error, wire: W.Internal },
  // Serving: no socket, or it cannot be served; the native addon is not built.
  LISTEN: { exit: error, wire: W.Internal },
  // The state directory (session records, the ledger and its per-uid locks) is one a user could change.
  STATE_DIR_UNSAFE: { exit: error, wire: W.Internal },
  ADDON_MISSING: { exit: error, wire: W.Internal },
  // The ledger's directory (in the state directory) is not root's alone.
  LEDGER_UNSAFE: { exit: error, wire: W.Internal },
};

/** A Map, so that no code can reach Object.prototype ("constructor", "__proto__"). */
const ROWS: ReadonlyMap<string, Row> = new Map(Object.entries(TABLE));

function rowOf(error: unknown): Row | undefined {
  return error instanceof CodedError ? ROWS.get(error.code) : undefined;
}

/** The status `xkvm-helper` exits with when `error` ends it: 70 unless it is a known CodedError. */
export function exitStatus(error: unknown): ExitStatus {
  return rowOf(error)?.exit ?? internal;
}

/** The code an error reply carries for `error`: INTERNAL unless it is a known CodedError. */
export function wireCode(error: unknown): ErrorCode {
  return rowOf(error)?.wire ?? W.Internal;
}
