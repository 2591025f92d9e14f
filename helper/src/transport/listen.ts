/**
 * Where connections come from: the listening socket systemd passes (LISTEN_FDS/LISTEN_PID,
 * fd 3), a socket bound at --socket PATH, or one session on stdin/stdout (--stdio, pkexec).
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import { MAX_CONNECTIONS } from './slots.js';

const SD_LISTEN_FDS_START = 3;

/** There is no socket to serve, or it cannot be served: the message says which and why. */
export class ListenError extends CodedError<'LISTEN'> {
  override readonly name = 'ListenError';

  constructor(message: string, options: { cause?: unknown } = {}) {
    super('LISTEN', message, options);
  }
}

/** The socket systemd passed us, if it passed exactly one to this very process. */
export function systemdFd(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const pid = env['LISTEN_PID'];
  const fds = env['LISTEN_FDS'];
  // Never let children inherit the activation variables.
  delete env['LISTEN_PID'];
  delete env['LISTEN_FDS'];
  delete env['LISTEN_FDNAMES'];
  if (pid === undefined || fds === undefined) return undefined;
  if (pid !== String(process.pid)) return undefined;
  if (fds !== '1') throw new ListenError(`systemd passed ${fds} sockets; xkvm-helper.socket must have exactly one ListenStream`);
  return SD_LISTEN_FDS_START;
}

function inUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export async function listen(onConnection: (socket: Socket) => void, where: { fd: number } | { path: string }): Promise<Server> {
  // Half-open: a client may end its side after its last request and still read the replies.
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, onConnection);
  // The helper refuses connections beyond its bound itself, with a reply that says so
  // (server.ts); this is only the backstop for the refused ones still closing.
  server.maxConnections = MAX_CONNECTIONS + 64;
  if ('path' in where) {
    let stale = false;
    try {
      stale = lstatSync(where.path).isSocket();
      if (!stale) throw new ListenError(`${where.path} exists and is not a socket: refusing to replace it`);
    } catch (error) {
      if (error instanceof ListenError) throw error;
    }
    if (stale) {
      if (await inUse(where.path)) throw new ListenError(`another helper already serves ${where.path}`);
      unlinkSync(where.path);
    }
  }
  await new Promise<void>((resolve, reject) => {
    const refused = (error: Error): void => {
      reject(new ListenError(`cannot listen on ${'path' in where ? where.path : `fd ${where.fd}`}: ${error.message}`, { cause: error }));
    };
    server.once('error', refused);
    server.listen('path' in where ? { path: where.path } : { fd: where.fd }, () => {
      server.off('error', refused);
      resolve();
    });
  });
  // Who may connect is decided by the policy, not by file mode.
  if ('path' in where) chmodSync(where.path, 0o666);
  return server;
}
