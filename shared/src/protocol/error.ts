import type { ErrorCode } from './codes.js';

/**
 * The error family of the client ⇄ helper boundary: a stable code, a message for a person,
 * and the original cause kept for logs.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ErrorCode;
  /** The request id this error answers, when the request got far enough to have one. */
  readonly id: number | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; id?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.id = options.id;
  }
}
