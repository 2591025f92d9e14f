import { NetError } from './errors.js';

/**
 * Commands for ip's batch mode, many in one process. Without `-force` ip stops at the first
 * command that fails and prints `Command failed -:N` (N counted from 1); with `-force` it goes on
 * and prints that for each failure. Some failures make ip exit without that line (an argument it
 * rejects while parsing, e.g. `master` naming a device that is gone: `Error: argument "X" is
 * wrong: Device does not exist`, exit 255), so a failure may come without a line number.
 */
export interface BatchOutcome {
  readonly ok: boolean;
  /** Line numbers (from 1, within this batch) of the commands ip reported as failed, in order. */
  readonly failedLines: readonly number[];
  readonly stderr: string;
}

/** Runs checked batch lines and reports as above (the helper uses its long-lived ips: deps.ts). */
export type IpBatch = (lines: readonly string[], opts: { force?: boolean }) => Promise<BatchOutcome>;

const FAILED = /^Command failed -:(\d+)$/gm;
/** Characters that would split or end a batch line, or start a comment or a quote in ip's batch parser. */
const UNSAFE = /[\n\r\0#"'\\]/;

export function parseFailedLines(stderr: string): number[] {
  return [...stderr.matchAll(FAILED)].map((m) => Number(m[1]));
}

/** Every batch goes through here: lines that could split or quote are refused before any ip sees them. */
export async function ipBatch(batch: IpBatch, lines: readonly string[], opts: { force?: boolean } = {}): Promise<BatchOutcome> {
  if (lines.length === 0) return { ok: true, failedLines: [], stderr: '' };
  for (const line of lines) {
    if (UNSAFE.test(line)) throw new NetError('SYSTEM_ERROR', `internal error: unsafe ip batch line ${JSON.stringify(line)}`);
  }
  return batch(lines, opts);
}
