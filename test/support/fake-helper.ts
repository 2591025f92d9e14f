/**
 * A test double of xkvm-helper: a Unix socket in a temporary directory speaking the real wire
 * protocol (4-byte big-endian length + strict msgpack, from shared/src/protocol) with replies
 * scripted by the test. It records every request (decoded, and validated as the real helper
 * would) and tells when the client ends its connection. A reply may carry fds (fd handoff),
 * sent with the helper's own addon as the real helper sends them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMessage, encodeBody, type WireValue } from '../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../shared/src/protocol/frame.js';
import type { Nic, Port, Request } from '../../shared/src/protocol/messages.js';
import { parseRequest } from '../../shared/src/protocol/validate.js';
import { sendWithFds } from '../../helper/src/native/fd-handoff.js';

/** What the double does in answer to one request. */
export type Action =
  /** Send this value as one well-formed frame; with `fds`, those as SCM_RIGHTS on its first byte (fd handoff). */
  | { reply: object; fds?: readonly number[] }
  /** Send these bytes as a frame body (need not be msgpack). */
  | { body: Uint8Array }
  /** Write these bytes as they are, no framing. */
  | { raw: Uint8Array }
  /** Send this value as a frame, one byte per write. */
  | { trickle: object }
  /** End the connection (after whatever came before in the list). */
  | { close: true }
  /** Say nothing. */
  | { silent: true };

export interface ReceivedRequest {
  /** The decoded frame body, as the helper would see it. */
  value: WireValue;
  /** The request as the helper's validator reads it, or why it would refuse it. */
  parsed: Request | { invalid: string };
}

/** Decides the answer to the n-th request (0-based, over all connections) on `connection`. */
export type Script = (request: ReceivedRequest, n: number, connection: FakeConnection) => Action | Action[];

export class FakeConnection {
  readonly requests: ReceivedRequest[] = [];
  /** Resolves when the client's end of the connection is gone (EOF or close). */
  readonly ended: Promise<void>;
  #ended = false;
  readonly socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
    this.ended = new Promise((resolve) => {
      const done = (): void => {
        this.#ended = true;
        resolve();
      };
      socket.once('end', done);
      socket.once('close', done);
    });
  }

  get hasEnded(): boolean {
    return this.#ended;
  }
}

export class FakeHelper {
  readonly dir: string;
  readonly path: string;
  readonly connections: FakeConnection[] = [];
  /** Every request, over all connections, in arrival order. */
  readonly requests: ReceivedRequest[] = [];
  readonly #server: Server;
  readonly #script: Script;
  #waiters: Array<(c: FakeConnection) => void> = [];

  private constructor(server: Server, dir: string, script: Script) {
    this.#server = server;
    this.dir = dir;
    this.path = join(dir, 'helper.sock');
    this.#script = script;
  }

  static async start(script: Script): Promise<FakeHelper> {
    const dir = mkdtempSync(join(tmpdir(), 'xkvm-fake-helper-'));
    const server = createServer();
    const helper = new FakeHelper(server, dir, script);
    server.on('connection', (socket) => helper.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(helper.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return helper;
  }

  /** The location makeNics/ovsCleanup take to reach this double. */
  get location(): { kind: 'socket'; path: string; from: 'XKVM_HELPER_SOCKET' } {
    return { kind: 'socket', path: this.path, from: 'XKVM_HELPER_SOCKET' };
  }

  /** The next connection (or the first one if it is already there). */
  connection(index = 0): Promise<FakeConnection> {
    const existing = this.connections[index];
    if (existing !== undefined) return Promise.resolve(existing);
    return new Promise((resolve) => {
      const check = (): void => {
        const c = this.connections[index];
        if (c !== undefined) resolve(c);
        else this.#waiters.push(check);
      };
      check();
    });
  }

  #serve(socket: Socket): void {
    const connection = new FakeConnection(socket);
    this.connections.push(connection);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w(connection);
    socket.on('error', () => {
      // the client may reset the connection; the test looks at `ended`
    });
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const body of bodies) {
        let value: WireValue = null;
        let parsed: ReceivedRequest['parsed'];
        try {
          value = decodeMessage(body);
          parsed = parseRequest(value);
        } catch (error) {
          parsed = { invalid: (error as Error).message };
        }
        const request: ReceivedRequest = { value, parsed };
        connection.requests.push(request);
        this.requests.push(request);
        const actions = this.#script(request, this.requests.length - 1, connection);
        void this.#perform(socket, Array.isArray(actions) ? actions : [actions]);
      }
    });
  }

  async #perform(socket: Socket, actions: Action[]): Promise<void> {
    for (const action of actions) {
      if (socket.destroyed) return;
      if ('reply' in action && action.fds !== undefined) await sendWithFds(socket, encodeFrame(encodeBody(action.reply)), action.fds);
      else if ('reply' in action) socket.write(encodeFrame(encodeBody(action.reply)));
      else if ('body' in action) socket.write(encodeFrame(action.body));
      else if ('raw' in action) socket.write(action.raw);
      else if ('trickle' in action) {
        for (const byte of encodeFrame(encodeBody(action.trickle))) {
          if (socket.destroyed) return;
          socket.write(Buffer.from([byte]));
          await new Promise((resolve) => setImmediate(resolve));
        }
      } else if ('close' in action) socket.end();
    }
  }

  /** Stop listening, drop every connection and remove the directory. */
  async stop(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Run `body` against a fresh double answering by `script`, and always stop it. */
export async function withFakeHelper(script: Script, body: (helper: FakeHelper) => Promise<void>): Promise<void> {
  const helper = await FakeHelper.start(script);
  try {
    await body(helper);
  } finally {
    await helper.stop();
  }
}

/** The id of a recorded request (0 when it had none). */
export function idOf(request: ReceivedRequest): number {
  const v = request.value;
  return v !== null && typeof v === 'object' && !Array.isArray(v) && typeof v['id'] === 'number' ? v['id'] : 0;
}

/** The helper's make-nics answer: one tap per bridge asked, named tapvm0, tapvm1, ... */
export function nicsFor(request: ReceivedRequest, type: Nic['type'] = 'brctl'): object {
  const bridges = (request.parsed as { nics?: Array<{ bridge: string }> }).nics?.map((n) => n.bridge) ?? [];
  return { v: 1, id: idOf(request), ok: true, nics: bridges.map((bridge, i) => ({ bridge, tap: `tapvm${i}`, type })) };
}

export function removedReply(request: ReceivedRequest, removed: Port[]): object {
  return { v: 1, id: idOf(request), ok: true, removed };
}

export function errorReply(request: ReceivedRequest, code: string, message: string): object {
  return { v: 1, id: idOf(request), ok: false, error: { code, message } };
}

/** `promise`, or a rejection naming `what` after `ms` milliseconds (uvu has no test timeouts). */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
