import { CodedError } from '../../../shared/src/errors/coded-error.js';

export type UserDbErrorCode =
  /** No user has this uid, in the files or through NSS. */
  | 'USERDB_NO_SUCH_UID'
  /** No user has this name, in the files or through NSS. */
  | 'USERDB_NO_SUCH_USER'
  /** The uid or name cannot be a user (not an integer uid, a name getent would misread). */
  | 'USERDB_BAD_KEY'
  /** /etc/passwd or /etc/group exists but could not be read. */
  | 'USERDB_IO'
  /** getent failed (not found is not a failure), timed out, or printed something unreadable. */
  | 'USERDB_LOOKUP_FAILED';

/** Errors of user lookups: a stable code, a message for a person, the original cause kept. */
export class UserDbError extends CodedError<UserDbErrorCode> {
  override readonly name = 'UserDbError';
}
