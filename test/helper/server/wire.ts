// A deliberately unhelpful client of the helper's socket: writes whatever bytes it is given, reads
// reply frames strictly (shared FrameDecoder + decodeMessage + parseReply: anything the helper sends
// that is not a valid reply is reported as `malformed`, never silently accepted) and tells when
// the helper closed the connection. Used from the test process (as root) and, through agent.ts,
// from processes running as ordinary users.
import { connect, type Socket } from 'node:net';
import { decodeMessage, encodeBody } from '../../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';
import type { Reply } from '../../../shared/src/protocol/messages.js';
import { parseReply } from '../../../shared/src/protocol/validate.js';
import { PATIENCE_MS } from '../../support/wait.js';

export type Next =
  | { kind: 'reply'; reply: Reply }
  | { kind: 'malformed'; error: string }
  | { kind: 'closed' }
  | { kind: 'timeout' };

/** A request frame for `value` (any JSON-like value; the encoder is the wire's own). */
export function frameOf(value: object): Buffer {
  return encodeFrame(encodeBody(value));
}

/** A 4-byte big-endian length followed by `body`, whatever the length says. */
export function rawFrame(body: Uint8Array, length: number = body.length): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length >>> 0);
  return Buffer.concat([header, body]);
}

export class WireConnection {
  readonly socket: Socket;
  readonly #decoder = new FrameDecoder();
  readonly #events: Next[] = [];
  #waiter: (() => void) | undefined;
  #closed = false;
  /** Write errors seen (EPIPE after the helper hung up is normal for hostile input). */
  readonly writeErrors: string[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = this.#decoder.push(chunk);
      } catch (error) {
        this.#push({ kind: 'malformed', error: `reply framing: ${(error as Error).message}` });
        socket.destroy();
        return;
      }
      for (const body of bodies) {
        try {
          this.#push({ kind: 'reply', reply: parseReply(decodeMessage(body)) });
        } catch (error) {
          this.#push({ kind: 'malformed', error: (error as Error).message });
        }
      }
    });
    const closed = (): void => {
      if (this.#closed) return;
      this.#closed = true;
      this.#push({ kind: 'closed' });
    };
    socket.on('end', closed);
    socket.on('close', closed);
    socket.on('error', (error) => {
      this.writeErrors.push(error.message);
    });
  }

  static connect(path: string, timeoutMs = PATIENCE_MS): Promise<WireConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ path, allowHalfOpen: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`cannot connect to ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to ${path}: ${error.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new WireConnection(socket));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #push(event: Next): void {
    this.#events.push(event);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  /** Write bytes as they are; resolves once handed to the kernel (or failed: see writeErrors). */
  write(bytes: Uint8Array): Promise<void> {
    if (this.socket.destroyed || this.socket.writableEnded) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.write(bytes, () => resolve());
    });
  }

  request(value: object): Promise<void> {
    return this.write(frameOf(value));
  }

  /** The next thing that happened: a reply (valid or malformed), the close, or nothing in time. */
  async next(timeoutMs = PATIENCE_MS): Promise<Next> {
    const first = this.#events.shift();
    if (first !== undefined) return first;
    if (this.#closed) return { kind: 'closed' };
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve();
      }, timeoutMs);
      this.#waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    return this.#events.shift() ?? (this.#closed ? { kind: 'closed' } : { kind: 'timeout' });
  }

  /** Send a request and wait for the next event. */
  async ask(value: object, timeoutMs = PATIENCE_MS): Promise<Next> {
    await this.request(value);
    return this.next(timeoutMs);
  }

  /** Half-close: no more bytes from us, replies may still come. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
