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
export class InstallError extends Error {
  override readonly name = 'InstallError';
  readonly code: InstallErrorCode;

  constructor(code: InstallErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}
