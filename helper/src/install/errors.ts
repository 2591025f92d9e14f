import { CodedError } from '../../../shared/src/errors/coded-error.js';

export type InstallErrorCode =
  /** install/uninstall was run by someone other than root. */
  | 'INSTALL_NOT_ROOT'
  /** `--group` names no group, or a name that cannot be one. */
  | 'INSTALL_BAD_GROUP'
  /** Code root would execute (the helper, its modules, node) can be changed by non-root users. */
  | 'INSTALL_UNSAFE_CODE'
  /** A path that goes into a generated file cannot be written there safely (relative, odd characters). */
  | 'INSTALL_BAD_PATH'
  /** The polkit action template is missing or malformed. */
  | 'INSTALL_TEMPLATE';

/** Why install or uninstall refused; nothing has been written when one is thrown before writing. */
export class InstallError extends CodedError<InstallErrorCode> {
  override readonly name = 'InstallError';
}
