/**
 * Errors on their way to the wire: a ProtocolError goes out as it is; an error of a lower layer
 * with a known code is translated; anything else becomes INTERNAL with details in the log only.
 */
import { ErrorCode, isErrorCode } from '../../../shared/src/protocol/codes.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';

const NET_CODES: Record<string, ErrorCode> = {
  NO_SUCH_BRIDGE: ErrorCode.NoSuchBridge,
  NOT_OWNER: ErrorCode.NotOwner,
  NO_SUCH_PORT: ErrorCode.NoSuchPort,
  SYSTEM_ERROR: ErrorCode.SystemError,
  BAD_NAME: ErrorCode.BadName,
};

export function toWireError(error: unknown, log: (message: string) => void): ProtocolError {
  if (error instanceof ProtocolError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error && typeof code === 'string') {
    const wire = NET_CODES[code] ?? (isErrorCode(code) ? code : undefined);
    if (wire !== undefined) return new ProtocolError(wire, error.message, { cause: error });
  }
  log(`internal error: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  return new ProtocolError(ErrorCode.Internal, 'internal error in the helper (details are in its log)');
}
