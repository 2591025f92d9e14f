import { basename } from 'node:path';
import { execa } from 'execa';
import { NetError } from './errors.js';
import { TOOL_ENV } from './tools.js';

/** One program to run: an absolute path, its arguments, stdin only when a batch is fed. */
export interface RunRequest {
  readonly file: string;
  readonly args: readonly string[];
  readonly input?: string | undefined;
  readonly timeoutMs: number;
}

/** How it ended: a program that ran to completion, whatever its exit status. */
interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one program. Resolves for any exit status; rejects (NetError SYSTEM_ERROR) only when the
 * program could not be started, was killed, or ran out of time.
 */
export type Runner = (request: RunRequest) => Promise<RunResult>;

/** The real runner: execa, no shell, exactly TOOL_ENV, cwd /, a time limit, output captured. */
export const systemRunner: Runner = async ({ file, args, input, timeoutMs }) => {
  if (!file.startsWith('/')) throw new NetError('SYSTEM_ERROR', `refusing to run ${file}: not an absolute path`);
  const result = await execa(file, [...args], {
    shell: false,
    env: { ...TOOL_ENV },
    extendEnv: false,
    cwd: '/',
    reject: false,
    timeout: timeoutMs,
    forceKillAfterDelay: 1000,
    ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
    stdout: 'pipe',
    stderr: 'pipe',
    encoding: 'utf8',
    stripFinalNewline: false,
    maxBuffer: 4 << 20,
  });
  const name = basename(file);
  if (result.timedOut) {
    throw new NetError('SYSTEM_ERROR', `${name} did not finish within ${timeoutMs} ms`, { cause: result });
  }
  if (result.exitCode === undefined) {
    throw new NetError('SYSTEM_ERROR', `could not run ${file}: ${result.shortMessage}`, { cause: result });
  }
  return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
};

/** A program's error output as one line for a message: non-empty lines joined, at most 400 characters. */
export function errorText(stderr: string): string {
  const text = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '').join('; ');
  if (text === '') return '(no error output)';
  return text.length > 400 ? `${text.slice(0, 399)}…` : text;
}
