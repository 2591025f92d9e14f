/**
 * One helper session through the real pkexec, driven at the wire level: as `user` in the
 * namespace, a shell of the user's runs `pkexec LAUNCHER --stdio` (the helper takes pkexec's
 * parent for its client, so that parent must be the user's own process, not root's runuser), the
 * request goes in as one frame, the reply frame comes back, and the session lasts until
 * `release()` closes stdin (or the process is killed).
 */
import { spawn } from 'node:child_process';
import { decodeMessage, encodeBody } from '../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../shared/src/protocol/frame.js';
import type { Netns } from './netns.js';
import { PKEXEC } from './polkit.js';
import { within } from './wait.js';

export interface PkexecSession {
  /** What was spawned (runuser, as root; the user's shell below it is the helper's client). */
  readonly pid: number;
  /** The first reply frame, as a plain object. */
  reply(deadlineMs: number): Promise<Record<string, unknown>>;
  /** Close stdin: the session ends. */
  release(): void;
  readonly exited: Promise<number | null>;
  stderr(): string;
  kill(): void;
}

export function openPkexecSession(ns: Netns, user: string, launcher: string, request: object,
  env: Readonly<Record<string, string>> = {}): PkexecSession {
  const argv = ns.command(['/bin/sh', '-c', '"$@"; exit $?', 'sh', PKEXEC, launcher, '--stdio'], { user, env });
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const decoder = new FrameDecoder();
  const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      try {
        const [frame] = decoder.push(chunk);
        if (frame !== undefined) resolve(JSON.parse(JSON.stringify(decodeMessage(frame))) as Record<string, unknown>);
      } catch (error) {
        reject(error as Error);
      }
    });
    void exited.then((code) => reject(new Error(`pkexec exited (${code}) without a reply: ${stderr}`)));
  });
  reply.catch(() => {});
  child.stdin.on('error', () => {});
  child.stdin.write(encodeFrame(encodeBody(request)));
  return {
    pid: child.pid ?? -1,
    reply: (deadlineMs) => within(reply, deadlineMs, `the reply through pkexec (${user})`),
    release: () => child.stdin.end(),
    exited,
    stderr: () => stderr,
    kill: () => {
      child.kill('SIGKILL');
    },
  };
}
