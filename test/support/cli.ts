/** Run the built client as a child process and wait for it with a deadline. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The shipped client: the bundle package.json's bin names. */
export const CLIENT_MAIN = fileURLToPath(new URL('../../bin/xkvm.cjs', import.meta.url));

export interface Finished {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  /** Resolves once stdout has contained `text` (rejects at the deadline). */
  waitFor(text: string, deadlineMs: number): Promise<void>;
  done(deadlineMs: number): Promise<Finished>;
}

export function startClient(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Running {
  const child = spawn(process.execPath, [CLIENT_MAIN, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of watchers) w();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<Finished>((resolve) => {
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
  return {
    child,
    waitFor(text, deadlineMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${text}" within ${deadlineMs} ms; stdout: ${stdout.slice(-500)} stderr: ${stderr.slice(-500)}`)), deadlineMs);
        const check = (): void => {
          if (stdout.includes(text)) {
            clearTimeout(timer);
            resolve();
          }
        };
        watchers.push(check);
        check();
      });
    },
    done(deadlineMs) {
      const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
      return exited.finally(() => clearTimeout(timer));
    },
  };
}

export function runClient(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; deadlineMs?: number } = {}): Promise<Finished> {
  return startClient(args, options).done(options.deadlineMs ?? 30_000);
}
