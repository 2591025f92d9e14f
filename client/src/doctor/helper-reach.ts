/** Whether the helper can be reached, and how: its socket answers, or pkexec and the launcher are there. */
import { createConnection } from 'node:net';
import { locateHelper } from '../helper/locate.js';
import type { Finding } from './finding.js';

/** Connects to the socket and closes at once (no request: nothing is made); the errno name on failure. */
function connects(path: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    const done = (problem: string | undefined): void => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(timeoutMs, () => done('no answer'));
    socket.once('connect', () => done(undefined));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}

/** `needed`: a bridge netdev was asked for (then an unreachable helper is a failure, not a warning). */
export async function helperFinding(needed: boolean, env: NodeJS.ProcessEnv = process.env): Promise<Finding> {
  const where = locateHelper(env);
  const level = needed ? 'fail' : 'warn';
  switch (where.kind) {
    case 'socket': {
      const from = where.from === 'XKVM_HELPER_SOCKET' ? ' ($XKVM_HELPER_SOCKET)' : '';
      const problem = await connects(where.path, 5000);
      if (problem === undefined) return { level: 'ok', subject: 'helper', text: `the socket ${where.path}${from} answers` };
      return {
        level, subject: 'helper', text: `the socket ${where.path}${from} does not answer (${problem})`,
        fix: where.from === 'XKVM_HELPER_SOCKET' ? 'unset XKVM_HELPER_SOCKET or point it at a served socket'
          : 'ask an admin: systemctl enable --now xkvm-helper.socket',
      };
    }
    case 'pkexec':
      return { level: 'ok', subject: 'helper', text: `no socket; through ${where.pkexec} ${where.helper} (polkit may ask for a password once a VM starts)` };
    case 'none':
      return { level, subject: 'helper', text: 'not installed', fix: where.why };
  }
}
