import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { PolicyError, where } from './errors.js';
import type { FileCheck } from './safety.js';
import type { RuleSource } from './types.js';

/** A policy file larger than this is refused: no real policy comes near it. */
const MAX_POLICY_BYTES = 1 << 20;

export interface PolicyFileText {
  readonly text: string;
  /** Device and inode, to recognise the same file under another name (include loops). */
  readonly id: string;
}

const SAFE_FILE = 'a regular file owned by root, not writable by group or others, in directories only root can change';

function kind(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const detail = typeof e.message === 'string' ? e.message.split(',')[0] : String(err);
  return detail ?? String(err);
}

/**
 * Read one policy file through a single descriptor: open (non-blocking, so a FIFO cannot hang
 * the helper), fstat, refuse anything but a regular file, run `check`, then read. `origin` is
 * the include line that named the file, if any: errors are then reported at that line.
 */
export function readPolicyFile(path: string, check: FileCheck, origin?: RuleSource): PolicyFileText {
  const prefix = origin === undefined ? where(path) : where(origin.file, origin.line);
  const subject = origin === undefined ? 'it' : `included file ${path}`;
  const at = origin === undefined ? { file: path } : { file: origin.file, line: origin.line };
  const unsafe = (problem: string): PolicyError =>
    new PolicyError('POLICY_UNSAFE_FILE', `${prefix}refusing ${subject}: ${problem}; expected ${SAFE_FILE}`, at);
  const io = (err: unknown): PolicyError =>
    new PolicyError('POLICY_IO', `${prefix}cannot read ${subject} (${errnoText(err)}); expected a readable policy file`,
      { ...at, cause: err });

  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw io(err);
  }
  try {
    let stat: Stats;
    try {
      stat = fstatSync(fd);
    } catch (err) {
      throw io(err);
    }
    if (!stat.isFile()) throw unsafe(`it is ${kind(stat)}`);
    const problem = check(path, stat);
    if (problem !== undefined) throw unsafe(problem);
    if (stat.size > MAX_POLICY_BYTES) {
      throw new PolicyError('POLICY_IO',
        `${prefix}${subject} is ${stat.size} bytes; expected a policy file of at most ${MAX_POLICY_BYTES} bytes`, at);
    }
    let text: string;
    try {
      text = readFileSync(fd, 'utf8');
    } catch (err) {
      throw io(err);
    }
    return { text, id: `${stat.dev}:${stat.ino}` };
  } finally {
    closeSync(fd);
  }
}
