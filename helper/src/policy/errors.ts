import { CodedError } from '../../../shared/src/errors/coded-error.js';
/**
 * Errors of policy loading. The message is for a person and has the form
 * `FILE:LINE: what was wrong; expected …` (just `FILE: …` when no line is involved);
 * `file` and `line` are also kept as fields, and the original error as `cause`.
 */
export type PolicyErrorCode =
  /** A line does not follow the grammar. */
  | 'POLICY_SYNTAX'
  /** A file could not be opened or read. */
  | 'POLICY_IO'
  /** An include names a file that is already being included (directly or further up). */
  | 'POLICY_INCLUDE_LOOP'
  /** Includes nested deeper than the limit. */
  | 'POLICY_INCLUDE_DEPTH'
  /** Not a regular file, not owned by root, or writable by group or others. */
  | 'POLICY_UNSAFE_FILE';

export interface PolicyErrorOptions {
  readonly file?: string;
  readonly line?: number;
  readonly cause?: unknown;
}

export class PolicyError extends CodedError<PolicyErrorCode> {
  override readonly name = 'PolicyError';
  readonly file: string | undefined;
  readonly line: number | undefined;

  constructor(code: PolicyErrorCode, message: string, options: PolicyErrorOptions = {}) {
    super(code, message, options);
    this.file = options.file;
    this.line = options.line;
  }
}

/** `FILE:LINE: ` (or `FILE: ` without a line), the prefix of every message. */
export function where(file: string, line?: number): string {
  return line === undefined ? `${file}: ` : `${file}:${line}: `;
}

/** A syntax error at file:line. `problem` says what was wrong, `expected` what would be right. */
export function syntaxError(file: string, line: number, problem: string, expected: string): PolicyError {
  return new PolicyError('POLICY_SYNTAX', `${where(file, line)}${problem}; expected ${expected}`, { file, line });
}
