import { CodedError } from '../../shared/src/errors/coded-error.js';
/**
 * The client's error family: a stable code, one line for a person (what was wrong and what is
 * allowed), the exit status to use, and the original cause kept for -v.
 */
export type ClientErrorCode =
  | 'USAGE'
  | 'BAD_NETDEV'
  | 'BAD_MAC'
  | 'BAD_DISK'
  | 'NO_BRIDGE'
  | 'NO_QEMU'
  | 'QEMU_PROBE'
  | 'FIRMWARE'
  | 'NVRAM'
  | 'HELPER'
  | 'RUN';

export class ClientError extends CodedError<ClientErrorCode> {
  override readonly name = 'ClientError';
  readonly exitCode: number;

  constructor(code: ClientErrorCode, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(code, message, options);
    this.exitCode = options.exitCode ?? 1;
  }
}
