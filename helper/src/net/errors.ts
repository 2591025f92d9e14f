import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { CodedError } from '../../../shared/src/errors/coded-error.js';

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
export class NetError extends CodedError<NetErrorCode> {
  override readonly name = 'NetError';
}
