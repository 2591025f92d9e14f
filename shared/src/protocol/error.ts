import type { ErrorCode } from './codes.js';
import { CodedError } from '../errors/coded-error.js';

/**
 * The error family of the client ⇄ helper boundary: a stable code, a message for a person,
 * and the original cause kept for logs.
 */
export class ProtocolError extends CodedError<ErrorCode> {
  override readonly name = 'ProtocolError';
  /** The request id this error answers, when the request got far enough to have one. */
  readonly id: number | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; id?: number } = {}) {
    super(code, message, options);
    this.id = options.id;
  }
}
