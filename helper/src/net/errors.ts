import { ErrorCode } from '../../../shared/src/protocol/codes.js';

/**
 * The codes this layer throws, a subset of the protocol's codes so that the server can put
 * `err.code` straight into an error reply.
 */
export type NetErrorCode =
  | typeof ErrorCode.BadName
  | typeof ErrorCode.BadRequest
  | typeof ErrorCode.NoSuchBridge
  | typeof ErrorCode.NotOwner
  | typeof ErrorCode.NoSuchPort
  | typeof ErrorCode.SystemError;

/** The one error class of the network layer: a stable code, a message for a person, the cause kept. */
export class NetError extends Error {
  override readonly name = 'NetError';
  readonly code: NetErrorCode;

  constructor(code: NetErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

export function isNetError(value: unknown): value is NetError {
  return value instanceof NetError;
}
