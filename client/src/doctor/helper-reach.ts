/** Whether the helper can be reached, and how: its socket answers, or pkexec and the launcher are there. */
import { execFile } from 'node:child_process';
import { createConnection } from 'node:net';
import { locateHelper, POLKIT_ACTION } from '../helper/locate.js';
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

const PKCHECK = '/usr/bin/pkcheck';

/**
 * What polkit would answer pkexec for this process, without asking anyone: pkcheck's status
 * (0 authorized, 1 not authorized, 2 a password would be asked), or why it could not tell.
 */
function polkitVerdict(): Promise<{ status: number } | { problem: string }> {
  return new Promise((resolve) => {
    execFile(PKCHECK, ['--action-id', POLKIT_ACTION, '--process', String(process.pid)], { encoding: 'utf8', timeout: 10_000, env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } },
      (error, _stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === 'number' ? error.code : undefined;
        if (status === 0 || status === 1 || status === 2) resolve({ status });
        else resolve({ problem: stderr.trim().split('\n')[0] || error?.message || 'no answer' });
      });
  });
}

async function pkexecFinding(pkexec: string, helper: string, level: 'fail' | 'warn'): Promise<Finding> {
  const how = `no socket; through ${pkexec} ${helper}`;
  const verdict = await polkitVerdict();
  if ('problem' in verdict) return { level: 'warn', subject: 'helper', text: `${how}, but polkit could not be asked (${verdict.problem})`, fix: 'ask an admin whether polkitd runs' };
  switch (verdict.status) {
    case 0: return { level: 'ok', subject: 'helper', text: `${how}: polkit lets you run it without a password` };
    case 2: return { level: 'ok', subject: 'helper', text: `${how}: polkit will ask for a password (an admin's) each time a VM starts` };
    default: return { level, subject: 'helper', text: `${how}: polkit does not let you run it`, fix: 'ask an admin to install with --group GROUP and add you to GROUP' };
  }
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
      return pkexecFinding(where.pkexec, where.helper, level);
    case 'none':
      return { level, subject: 'helper', text: 'not installed', fix: where.why };
  }
}
