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

/** How a batch is run. */
export interface BatchOptions {
  /** -force's outcome: a failing line does not stop the lines after it. */
  readonly force?: boolean;
  /**
   * Devices the lines name (bridges), with the ifindex each name must mean. An ip resolves a
   * name once and remembers the index for as long as it runs, so after a bridge was renamed and
   * another made under its name, a long-lived ip would still attach to the old one: an ip that
   * resolved one of these names to another index is replaced by a new one before the batch.
   */
  readonly devices?: ReadonlyMap<string, number>;
  /** Run in an ip started for this batch, which remembers nothing from earlier batches. */
  readonly fresh?: boolean;
}

/** Runs checked batch lines and reports as above (the helper uses its long-lived ips: deps.ts). */
export type IpBatch = (lines: readonly string[], opts: BatchOptions) => Promise<BatchOutcome>;

const FAILED = /^Command failed -:(\d+)$/gm;
/** Characters that would split or end a batch line, or start a comment or a quote in ip's batch parser. */
const UNSAFE = /[\n\r\0#"'\\]/;

export function parseFailedLines(stderr: string): number[] {
  return [...stderr.matchAll(FAILED)].map((m) => Number(m[1]));
}

/** Every batch goes through here: lines that could split or quote are refused before any ip sees them. */
export async function ipBatch(batch: IpBatch, lines: readonly string[], opts: BatchOptions = {}): Promise<BatchOutcome> {
  if (lines.length === 0) return { ok: true, failedLines: [], stderr: '' };
  for (const line of lines) {
    if (UNSAFE.test(line)) throw new NetError('SYSTEM_ERROR', `internal error: unsafe ip batch line ${JSON.stringify(line)}`);
  }
  return batch(lines, opts);
}
