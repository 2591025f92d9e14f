/**
 * Errors on their way to the wire: a ProtocolError goes out as it is; another error of a known
 * family goes out with the code the error table gives it (errors/table.ts) and its message;
 * anything else becomes INTERNAL, with the details in the log only.
 */
import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import { errorDetails } from '../errors/details.js';
import { wireCode } from '../errors/table.js';

/** What a caller is told when the helper failed in a way it cannot explain to them. */
export const INTERNAL_MESSAGE = 'internal error in the helper (details are in its log)';

export function toWireError(error: unknown, log: (message: string) => void): ProtocolError {
  if (error instanceof ProtocolError) return error;
  const code = wireCode(error);
  if (code !== ErrorCode.Internal && error instanceof Error) return new ProtocolError(code, error.message, { cause: error });
  log(`internal error: ${errorDetails(error)}`);
  return new ProtocolError(ErrorCode.Internal, INTERNAL_MESSAGE);
}
