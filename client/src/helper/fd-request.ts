/**
 * The client's end of fd handoff (issue 11, docs/fd-handoff.md): a connection to the helper
 * that is a bare Unix stream socket driven by the client's addon, never a net.Socket (libuv
 * would read the reply's bytes and drop the tap fds that travel with them as SCM_RIGHTS).
 * Discovery as for named taps (locate.ts): the helper's socket, else `pkexec HELPER --stdio`
 * with one end of a socketpair as the helper's stdin and stdout (on pipes a helper refuses fd
 * handoff). Frames per shared/src/protocol (strict decoding, the frame limits); a reply's fds
 * (one per queue, nic by nic) are collected while its frame is read and checked against it.
 * The connection stays open while qemu runs, as a named session's does; the taps themselves
 * live as long as some process holds their fds (qemu, once handed over).
 */
import { spawn } from 'node:child_process';
import { decodeMessage, encodeBody } from '../../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES, MAX_REQUEST_ID } from '../../../shared/src/protocol/limits.js';
import type { Reply } from '../../../shared/src/protocol/messages.js';
import { parseReply } from '../../../shared/src/protocol/validate.js';
import { ClientError } from '../errors.js';
import { closeFds, connectUnix, errnoCode, receiveWithFds, sendWithFds, socketPair } from '../native/fdpass.js';
import { stderrHint, type RequestBody } from './connection.js';
import type { HelperLocation } from './locate.js';

/** The kernel passes at most this many fds in one message (SCM_MAX_FD). */
const MAX_FDS_PER_MESSAGE = 253;

export class FdConnection {
  #fd: number | undefined;
  readonly #describe: string;
  readonly #onClose: () => void;
  readonly #drained: () => Promise<void>;
  #nextId = 1;
  #busy = false;
  /** What the helper wrote on stderr (pkexec only), shown when it fails. */
  stderr = '';

  /** Takes ownership of `fd`, a connected Unix stream socket nothing else reads. */
  /**
   * Takes ownership of `fd`, a connected Unix stream socket nothing else reads. `drained`
   * resolves once a pkexec'd helper's stderr is complete (read before reporting its end).
   */
  constructor(fd: number, describe: string, onClose: () => void = () => {}, drained: () => Promise<void> = async () => {}) {
    this.#fd = fd;
    this.#describe = describe;
    this.#onClose = onClose;
    this.#drained = drained;
  }

  get description(): string {
    return this.#describe;
  }

  #lost(why: string, cause?: unknown): ClientError {
    return new ClientError('HELPER', `lost the helper (${this.#describe}): ${why}${stderrHint(this.stderr)}`, cause === undefined ? {} : { cause });
  }

  /**
   * Sends `body` and reads its reply, with the fds that came with it: exactly `expectFds` for
   * a success (one per queue), none for a refusal; anything else closes what came and fails
   * (and the connection with it: framing or fds can no longer be trusted).
   */
  async request(body: RequestBody, expectFds: number): Promise<{ reply: Reply; fds: number[] }> {
    const fd = this.#fd;
    if (fd === undefined) throw new ClientError('HELPER', 'the helper connection was closed');
    if (this.#busy) throw new Error('FdConnection.request: one request at a time');
    this.#busy = true;
    const id = this.#nextId;
    this.#nextId = this.#nextId >= MAX_REQUEST_ID ? 1 : this.#nextId + 1;
    const fds: number[] = [];
    try {
      try {
        await sendWithFds(fd, encodeFrame(encodeBody({ ...body, id })), []);
      } catch (error) {
        throw this.#lost((error as Error).message, error);
      }
      const decoder = new FrameDecoder();
      const maxFds = Math.min(Math.max(expectFds, 1), MAX_FDS_PER_MESSAGE);
      for (;;) {
        let got;
        try {
          // No time limit: under pkexec, polkit may be asking the user for a password.
          got = await receiveWithFds(fd, FRAME_HEADER_BYTES + MAX_FRAME_BYTES, maxFds, -1);
        } catch (error) {
          const why = errnoCode(error) === 'EMSGSIZE' ? `it sent more file descriptors than the ${expectFds} asked for` : (error as Error).message;
          throw this.#lost(why, error);
        }
        fds.push(...got.fds);
        if (fds.length > expectFds) throw this.#lost(`it sent more file descriptors than the ${expectFds} asked for`);
        if (got.data.length === 0) {
          await this.#drained();
          throw new ClientError('HELPER', `the helper (${this.#describe}) closed the connection${stderrHint(this.stderr)}`);
        }
        let frames: Buffer[];
        try {
          frames = decoder.push(got.data);
        } catch (error) {
          throw this.#lost(`it sent something unreadable: ${(error as Error).message}`, error);
        }
        if (frames.length === 0) continue;
        if (frames.length > 1 || decoder.pending) throw this.#lost('it sent more than one reply to one request');
        let reply: Reply;
        try {
          reply = parseReply(decodeMessage(frames[0]!));
        } catch (error) {
          throw this.#lost(`it sent something unreadable: ${(error as Error).message}`, error);
        }
        if (reply.id !== id) throw this.#lost(`it answered request ${reply.id}, which was never asked`);
        const want = reply.ok ? expectFds : 0;
        if (fds.length !== want) {
          throw this.#lost(`its ${reply.ok ? 'reply' : 'refusal'} came with ${fds.length} file descriptors, expected ${want}`);
        }
        return { reply, fds };
      }
    } catch (error) {
      closeFds(fds);
      this.close();
      throw error;
    } finally {
      this.#busy = false;
    }
  }

  /** Ends the connection (the taps already handed over are not affected). */
  close(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    closeFds([fd]);
    this.#onClose();
  }
}

function connectSocket(path: string): FdConnection {
  try {
    return new FdConnection(connectUnix(path), path);
  } catch (error) {
    const code = errnoCode(error);
    const why = code === 'ENOENT' ? 'no such socket'
      : code === 'ECONNREFUSED' ? 'nothing is listening (is xkvm-helper.socket running?)'
      : code === 'EACCES' ? 'permission denied'
      : code === 'EAGAIN' ? 'it is not accepting connections (busy)' : (error as Error).message;
    throw new ClientError('HELPER', `cannot reach the helper at ${path}: ${why}`, { cause: error });
  }
}

function spawnPkexec(pkexec: string, helper: string): Promise<FdConnection> {
  const [mine, theirs] = socketPair();
  return new Promise((resolve, reject) => {
    let child;
    try {
      // The helper's stdin and stdout are one socket (dup2 clears its O_CLOEXEC in the child).
      child = spawn(pkexec, [helper, '--stdio'], { stdio: [theirs, theirs, 'pipe'] });
    } catch (error) {
      closeFds([mine, theirs]);
      reject(new ClientError('HELPER', `cannot run ${pkexec}: ${(error as Error).message}`, { cause: error }));
      return;
    }
    closeFds([theirs]);
    child.once('error', (error) => {
      closeFds([mine]);
      reject(new ClientError('HELPER', `cannot run ${pkexec}: ${error.message}`, { cause: error }));
    });
    child.once('spawn', () => {
      const stderr = child.stderr!;
      // pkexec's own refusal ("Not authorized") may come after the socket's end: wait a little.
      const ended = new Promise<void>((done) => stderr.once('close', done));
      const drained = (): Promise<void> => Promise.race([ended, new Promise<void>((done) => setTimeout(done, 2000).unref())]);
      const connection = new FdConnection(mine, `pkexec ${helper}`, () => stderr.destroy(), drained);
      stderr.setEncoding('utf8');
      stderr.on('data', (text: string) => {
        connection.stderr = (connection.stderr + text).slice(-4096);
      });
      // Do not keep the event loop alive for the helper alone.
      child.unref();
      resolve(connection);
    });
  });
}

export async function openFdConnection(location: HelperLocation): Promise<FdConnection> {
  switch (location.kind) {
    case 'socket': return connectSocket(location.path);
    case 'pkexec': return spawnPkexec(location.pkexec, location.helper);
    case 'none': throw new ClientError('HELPER', location.why);
  }
}
