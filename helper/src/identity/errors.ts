import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { CodedError } from '../../../shared/src/errors/coded-error.js';

/** The caller could not be identified: the kernel would not say, or what it said does not hold. */
export class IdentityError extends CodedError<typeof ErrorCode.NoIdentity> {
  override readonly name = 'IdentityError';

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCode.NoIdentity, message, options);
  }
}
