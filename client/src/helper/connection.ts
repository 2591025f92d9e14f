/**
 * One connection to the helper: framed msgpack requests out, replies matched by id in. The
 * transport is a Unix socket or a pkexec'd helper's stdin/stdout; either way, the connection
 * staying open is what keeps a session's taps alive.
 */
import { connect } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { decodeMessage, encodeBody } from '../../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';
import { MAX_REQUEST_ID } from '../../../shared/src/protocol/limits.js';
import type { MakeNicsMessage, OvsCleanupRequest, Reply } from '../../../shared/src/protocol/messages.js';
import { parseReply } from '../../../shared/src/protocol/validate.js';
import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import { ClientError } from '../errors.js';
import type { HelperLocation } from './locate.js';

/** Omit on each member of a union (plain Omit keeps only the keys all members share). */
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type RequestBody = OmitEach<MakeNicsMessage | OvsCleanupRequest, 'id'>;

/** What a pkexec'd helper's stderr says about its failure, as a suffix for the error line. */
export function stderrHint(stderr: string): string {
  const text = stderr.trim();
  if (/Not authorized/.test(text)) {
    return ': polkit did not authorize you to run the xkvm helper; an admin can allow a group with ' +
      '`xkvm-helper install --group GROUP` (and `allow BRIDGE @GROUP` in /etc/xkvm/helper.conf)';
  }
  return text === '' ? '' : `: ${escapeForTerminal(text.split('\n').slice(-3).join(' | '))}`;
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

export class HelperConnection {
  readonly #output: Writable;
  readonly #close: () => void;
  readonly #describe: string;
  readonly #decoder = new FrameDecoder();
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: Error | undefined;
  /** What the helper wrote on stderr (pkexec only), shown when it fails. */
  stderr = '';
  #onClose: Array<(error: Error) => void> = [];

  constructor(input: Readable, output: Writable, close: () => void, describe: string) {
    this.#output = output;
    this.#close = close;
    this.#describe = describe;
    input.on('data', (chunk: Buffer) => this.#receive(chunk));
    input.on('end', () => this.#fail(new ClientError('HELPER', `the helper (${describe}) closed the connection${stderrHint(this.stderr)}`)));
    input.on('error', (error) => this.#fail(new ClientError('HELPER', `lost the helper (${describe}): ${error.message}`, { cause: error })));
    output.on('error', (error) => this.#fail(new ClientError('HELPER', `lost the helper (${describe}): ${error.message}`, { cause: error })));
  }

  #receive(chunk: Buffer): void {
    try {
      for (const body of this.#decoder.push(chunk)) {
        const reply = parseReply(decodeMessage(body));
        const pending = this.#pending.get(reply.id);
        if (pending === undefined) throw new ClientError('HELPER', `the helper answered request ${reply.id}, which was never asked`);
        this.#pending.delete(reply.id);
        pending.resolve(reply);
      }
    } catch (error) {
      const failure = error instanceof ClientError ? error
        : new ClientError('HELPER', `the helper sent something unreadable: ${(error as Error).message}`, { cause: error });
      this.#fail(failure);
      this.close();
    }
  }

  #fail(error: Error): void {
    if (this.#closed !== undefined) return;
    this.#closed = error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    for (const listener of this.#onClose) listener(error);
  }

  /** Called once if the connection ends for any reason other than close(). */
  onLost(listener: (error: Error) => void): void {
    this.#onClose.push(listener);
  }

  request(body: RequestBody): Promise<Reply> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    const id = this.#nextId;
    this.#nextId = this.#nextId >= MAX_REQUEST_ID ? 1 : this.#nextId + 1;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#output.write(encodeFrame(encodeBody({ ...body, id })));
    });
  }

  /** End the connection (and with it the session: the helper removes session taps). */
  close(): void {
    if (this.#closed === undefined) this.#closed = new ClientError('HELPER', 'the helper connection was closed');
    this.#close();
  }

  get description(): string {
    return this.#describe;
  }
}

function connectSocket(path: string): Promise<HelperConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const why = error.code === 'ENOENT' ? 'no such socket'
        : error.code === 'ECONNREFUSED' ? 'nothing is listening (is xkvm-helper.socket running?)'
        : error.code === 'EACCES' ? 'permission denied' : error.message;
      reject(new ClientError('HELPER', `cannot reach the helper at ${path}: ${why}`, { cause: error }));
    });
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(new HelperConnection(socket, socket, () => socket.destroy(), path));
    });
  });
}

function spawnPkexec(pkexec: string, helper: string): Promise<HelperConnection> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(pkexec, [helper, '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.once('error', (error) => reject(new ClientError('HELPER', `cannot run ${pkexec}: ${error.message}`, { cause: error })));
    child.once('spawn', () => {
      const connection = new HelperConnection(child.stdout!, child.stdin!, () => {
        child.stdin?.end();
        child.stdout?.destroy();
      }, `pkexec ${helper}`);
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (text: string) => {
        connection.stderr = (connection.stderr + text).slice(-4096);
      });
      // Do not keep the event loop alive for the helper alone.
      child.unref();
      resolve(connection);
    });
  });
}

export function openConnection(location: HelperLocation): Promise<HelperConnection> {
  switch (location.kind) {
    case 'socket': return connectSocket(location.path);
    case 'pkexec': return spawnPkexec(location.pkexec, location.helper);
    case 'none': return Promise.reject(new ClientError('HELPER', location.why));
  }
}
