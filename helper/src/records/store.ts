/**
 * Session state on disk (default /run/xkvm/sessions): one JSON file per session naming the
 * client process (pid and start time), the helper serving it (pid and start time) and its taps.
 * A helper that crashes leaves the files behind; the next helper to start keeps the taps of
 * clients still running and removes those of clients that are gone (docs/protocol.md, invariant 4).
 *
 * A helper acts on these files as root (it deletes the taps they name), so the directory must be
 * one only root can change (trustedStateDir, at start), and every record read back is checked
 * field by field: a record that is not exactly what a helper writes is reported and skipped.
 */
import { closeSync, constants, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import type { Nic } from '../../../shared/src/protocol/messages.js';
import { isValidIfname } from '../../../shared/src/protocol/names.js';
import { DEFAULT_STATE_DIR } from '../defaults.js';
import { parentDirectoryProblem, trustedDirectoryProblem } from '../policy/safety.js';

/** The state directory is one a user could change: the helper refuses to start. */
export class StateDirError extends CodedError<'STATE_DIR_UNSAFE'> {
  override readonly name = 'StateDirError';
}

const SAFE_DIR = 'expected a directory owned by root and writable by root alone, in directories only root can change (as /run/xkvm/sessions is)';

/**
 * The state directory, made (mode 0700) if missing, once it is known to be one only root can
 * change; otherwise a StateDirError naming it. Nothing is created below a directory a user
 * controls, and what was created is checked again (a user may have raced to make it first).
 */
export function trustedStateDir(dir: string): string {
  const path = resolve(dir);
  const refuse = (problem: string): StateDirError =>
    new StateDirError('STATE_DIR_UNSAFE', `refusing the state directory ${path}: ${problem}; ${SAFE_DIR}`);
  let existing = path;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  if (existing !== path) {
    const problem = parentDirectoryProblem(existing);
    if (problem !== undefined) throw refuse(`it would be made in ${existing}, and ${problem}`);
    try {
      mkdirSync(path, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw refuse(`it cannot be made (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  }
  const problem = trustedDirectoryProblem(path);
  if (problem !== undefined) throw refuse(problem);
  return path;
}

/** The largest pid_t. */
const MAX_PID = 0x7fffffff;
/** A uid other than (uid_t)-1, which means "none". */
const MAX_UID = 0xfffffffe;
/** A record larger than this is not one a helper wrote (a session holds at most max-taps ≤ 4096 taps). */
const MAX_RECORD_BYTES = 1 << 20;

export interface ProcessRef {
  pid: number;
  start: string;
}

export interface SessionRecord {
  version: 1;
  id: string;
  uid: number;
  client: ProcessRef;
  helper: ProcessRef;
  nics: Nic[];
}

function isProcessRef(p: unknown): p is ProcessRef {
  if (typeof p !== 'object' || p === null) return false;
  const { pid, start } = p as Partial<ProcessRef>;
  return Number.isInteger(pid) && pid! > 0 && pid! <= MAX_PID && typeof start === 'string' && /^(0|[1-9][0-9]{0,19})$/.test(start);
}

function isNic(n: unknown): n is Nic {
  if (typeof n !== 'object' || n === null) return false;
  const { bridge, tap, type } = n as Partial<Nic>;
  return isValidIfname(bridge) && isValidIfname(tap) && (type === 'brctl' || type === 'ovs');
}

/**
 * What is wrong with a record read back, or undefined when every field the helpers use is what a
 * helper writes (other keys are left alone: a later version may add some).
 */
function recordProblem(value: unknown, file: string): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const r = value as Partial<SessionRecord>;
  if (r.version !== 1) return 'not version 1';
  if (typeof r.id !== 'string' || !/^[0-9a-f]{16}$/.test(r.id) || `${r.id}.json` !== file) return 'its id is not its file name';
  if (!Number.isInteger(r.uid) || r.uid! < 0 || r.uid! > MAX_UID) return 'uid is not a uid';
  if (!isProcessRef(r.client)) return 'client is not a process (a pid above 0, start a decimal string)';
  if (!isProcessRef(r.helper)) return 'helper is not a process (a pid above 0, start a decimal string)';
  if (!Array.isArray(r.nics) || !r.nics.every(isNic)) return 'nics are not taps (bridge, tap, type)';
  return undefined;
}

/** A record file's text: a regular file (never a FIFO or a link followed), of a sane size. */
function readRecordFile(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error('not a regular file');
    if (stat.size > MAX_RECORD_BYTES) throw new Error(`${stat.size} bytes`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export class SessionStore {
  readonly dir: string;

  constructor(dir: string = DEFAULT_STATE_DIR) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  newId(): string {
    return randomBytes(8).toString('hex');
  }

  /**
   * Write a record atomically (a temporary file renamed over it). Synchronously: on the thread
   * pool the four system calls cost more in hand-offs than they take (measured: more helper CPU
   * a request and slower replies under 16 concurrent sessions).
   */
  write(record: SessionRecord): void {
    const file = join(this.dir, `${record.id}.json`);
    const temp = `${file}.tmp`;
    writeFileSync(temp, JSON.stringify(record), { mode: 0o600 });
    renameSync(temp, file);
  }

  /** Remove a record. One already gone is fine; any other failure is thrown, for the caller to report. */
  remove(id: string): void {
    try {
      unlinkSync(join(this.dir, `${id}.json`));
    } catch (error) {
      if ((error as NodeJS.ErrnoException | null)?.code !== 'ENOENT') throw error;
    }
  }

  /**
   * Every well-formed record; a file that is unreadable or not a record is reported (with what
   * is wrong) and skipped, never trusted and never fatal.
   */
  list(onBad: (file: string, problem: string) => void = () => {}): SessionRecord[] {
    const out: SessionRecord[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.json')) continue;
      let value: unknown;
      try {
        value = JSON.parse(readRecordFile(join(this.dir, name)));
      } catch (error) {
        onBad(name, `unreadable: ${(error as Error).message}`);
        continue;
      }
      const problem = recordProblem(value, name);
      if (problem === undefined) out.push(value as SessionRecord);
      else onBad(name, problem);
    }
    return out;
  }
}
