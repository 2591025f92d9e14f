/**
 * One client connection, whatever the transport: frames in, strict decode, validation, one
 * request at a time, replies out. Broken framing (bad length, a frame not completed within 5 s,
 * undecodable msgpack, a non-map) gets an error reply where possible and the connection is
 * closed; a well-framed bad request gets an error reply and the connection stays usable. When
 * the connection ends, however it ends, the session's taps are removed. A request that fails in
 * a way nobody foresaw (a bug) is logged and answered INTERNAL, and the connection goes on.
 */
import type { Readable, Writable } from 'node:stream';
import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { decodeMessage, encodeBody } from '../../../shared/src/protocol/decode.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';
import { FRAME_DEADLINE_MS } from '../../../shared/src/protocol/limits.js';
import type { Reply } from '../../../shared/src/protocol/messages.js';
import { parseRequest } from '../../../shared/src/protocol/validate.js';
import type { AuditLog } from '../audit/audit.js';
import { errorDetails } from '../errors/details.js';
import type { Caller } from '../identity/caller.js';
import type { Service, Session } from '../requests/service.js';
import { INTERNAL_MESSAGE } from '../requests/wire-error.js';

/** Requests queued on one connection beyond this close it (a client must wait for replies). */
const MAX_QUEUED = 16;

export interface ConnectionOptions {
  input: Readable;
  output: Writable;
  /** Close the transport. */
  close: () => void;
  /** Establish who is at the other end (once, before the first request is served). */
  identify: () => Promise<Caller>;
  service: Pick<Service, 'handle' | 'discard' | 'endSession'>;
  audit: AuditLog;
  /** The helper's log (stderr): details of internal errors, which callers are not shown. */
  log: (message: string) => void;
  newSessionId: () => string;
  /** The peer as the kernel reported it at accept, for audit records before identification. */
  peer?: { uid: number; pid: number } | undefined;
  deadlineMs?: number;
  /** Called once, after the session's taps are gone. */
  onEnd?: () => void;
}

export class Connection {
  readonly #o: ConnectionOptions;
  readonly #decoder = new FrameDecoder();
  readonly #session: Session;
  #queue: Buffer[] = [];
  #draining: Promise<void> | undefined;
  #ended = false;
  #closing = false;
  #deadline: NodeJS.Timeout | undefined;
  /** The client ended its side; replies still go out (stdin emits 'close' right after 'end'). */
  #halfClosing = false;
  #caller: Caller | undefined;
  #identity: Promise<Caller> | undefined;
  /** The request being served; the session ends only after it (its taps must not leak). */
  #inflight: Promise<void> = Promise.resolve();

  constructor(options: ConnectionOptions) {
    this.#o = options;
    this.#session = { id: options.newSessionId(), nics: [] };
    options.input.on('data', (chunk: Buffer) => this.#receive(chunk));
    // A half-close ends the requests, not the replies: answer what was asked, then close.
    options.input.on('end', () => this.#halfClosed());
    options.input.on('close', () => {
      if (!this.#halfClosing) this.#end('connection closed');
    });
    options.input.on('error', (error) => this.#end(`connection error: ${error.message}`));
    options.output.on('error', () => this.#end('connection error while replying'));
  }

  #receive(chunk: Buffer): void {
    if (this.#closing) return;
    let frames: Buffer[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      this.#fatal(error instanceof ProtocolError ? error : new ProtocolError(ErrorCode.BadFrame, 'broken framing'));
      return;
    }
    // The 5 s limit applies to each frame: a completed frame restarts it.
    if (frames.length > 0) this.#disarmDeadline();
    if (this.#decoder.pending) this.#armDeadline();
    else this.#disarmDeadline();
    this.#queue.push(...frames);
    if (this.#queue.length > MAX_QUEUED) {
      this.#fatal(new ProtocolError(ErrorCode.BadFrame, `more than ${MAX_QUEUED} requests queued without waiting for replies`));
      return;
    }
    void this.#drain();
  }

  #armDeadline(): void {
    if (this.#deadline !== undefined) return;
    const ms = this.#o.deadlineMs ?? FRAME_DEADLINE_MS;
    this.#deadline = setTimeout(() => {
      this.#fatal(new ProtocolError(ErrorCode.BadFrame, `a frame was started but not completed within ${ms / 1000} s`));
    }, ms);
  }

  #disarmDeadline(): void {
    if (this.#deadline !== undefined) clearTimeout(this.#deadline);
    this.#deadline = undefined;
  }

  /** Serve queued frames one at a time; the promise settles when the queue is empty. */
  #drain(): Promise<void> {
    this.#draining ??= this.#serveQueue();
    return this.#draining;
  }

  async #serveQueue(): Promise<void> {
    // Yield first, so that #drain has assigned #draining before this can reset it.
    await undefined;
    try {
      while (this.#queue.length > 0 && !this.#closing) {
        const body = this.#queue.shift()!;
        const serving = { id: 0 };
        this.#inflight = this.#serve(body, serving).catch((error: unknown) => this.#internalError(error, serving.id));
        await this.#inflight;
      }
    } finally {
      // In the same step as the last look at the queue: a frame queued after it starts a new
      // drain (with a .finally here instead, a frame arriving from a microtask in between, as
      // on in-memory streams, would wait for the next frame).
      this.#draining = undefined;
    }
  }

  /** Serve one frame; `serving.id` is the request's id once it is known. */
  async #serve(body: Buffer, serving: { id: number }): Promise<void> {
    let value;
    try {
      value = decodeMessage(body);
    } catch (error) {
      this.#fatal(error instanceof ProtocolError ? error : new ProtocolError(ErrorCode.BadFrame, 'undecodable frame'));
      return;
    }
    let caller: Caller;
    try {
      caller = await this.#identify();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#o.audit.write({ event: 'identify', result: 'error', message });
      this.#fatal(new ProtocolError(ErrorCode.NoIdentity, `the helper cannot tell who you are: ${message}`));
      return;
    }
    let request;
    try {
      request = parseRequest(value);
    } catch (error) {
      const wire = error instanceof ProtocolError ? error : new ProtocolError(ErrorCode.BadRequest, 'invalid request');
      this.#o.audit.write({ event: 'request', caller: { uid: caller.uid, user: caller.user.name, pid: caller.pid }, result: 'rejected', code: wire.code, message: wire.message });
      this.#send({ v: 1, id: wire.id ?? 0, ok: false, error: { code: wire.code, message: wire.message } });
      return;
    }
    serving.id = request.id;
    const reply = await this.#o.service.handle(request, caller, this.#session);
    if (this.#ended && request.op === 'make-nics' && request.lifetime === 'persistent' && 'nics' in reply) {
      // Nobody will ever learn these taps' names: do not leave them behind.
      await this.#o.service.discard(reply.nics, caller, 'the client left before the reply');
      return;
    }
    this.#send(reply);
  }

  /**
   * Serving a frame threw (a bug: every foreseen failure has its own reply): the details go to
   * the log, that request gets INTERNAL (id 0 if it was not read that far) if the connection is
   * still open, and the next request is served.
   */
  #internalError(error: unknown, id: number): void {
    this.#o.log(`internal error serving request ${id}: ${errorDetails(error)}`);
    try {
      this.#send({ v: 1, id, ok: false, error: { code: ErrorCode.Internal, message: INTERNAL_MESSAGE } });
    } catch (sendError) {
      this.#o.log(`cannot send the INTERNAL reply to request ${id}: ${errorDetails(sendError)}`);
    }
  }

  #identify(): Promise<Caller> {
    this.#identity ??= this.#o.identify().then((caller) => {
      this.#caller = caller;
      return caller;
    });
    return this.#identity;
  }

  #send(reply: Reply): void {
    if (this.#closing) return;
    this.#o.output.write(encodeFrame(encodeBody(reply)));
  }

  /** Reply with the error (id 0: the request could not be read) and close. */
  #fatal(error: ProtocolError): void {
    if (this.#closing) return;
    this.#send({ v: 1, id: error.id ?? 0, ok: false, error: { code: error.code, message: error.message } });
    this.#closing = true;
    this.#disarmDeadline();
    this.#o.audit.write({ event: 'connection', result: 'closed', code: error.code, message: error.message, uid: this.#caller?.uid ?? this.#o.peer?.uid, pid: this.#caller?.pid ?? this.#o.peer?.pid });
    this.#o.output.end?.();
    setImmediate(() => this.#o.close());
    this.#end(`closed by the helper: ${error.message}`);
  }

  #halfClosed(): void {
    if (this.#closing) return;
    this.#halfClosing = true;
    if (this.#decoder.pending) {
      this.#fatal(new ProtocolError(ErrorCode.BadFrame, 'the connection ended in the middle of a frame'));
      return;
    }
    // Every frame already received is served (the queue drains), then the replies' side ends.
    void this.#drain().then(() => {
      this.#halfClosing = false;
      this.#o.output.end?.();
      this.#end('client closed the connection');
    });
  }

  #end(why: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#closing = true;
    this.#disarmDeadline();
    void this.#inflight
      .then(() => this.#o.service.endSession(this.#session, this.#caller, why))
      .catch((error: unknown) => this.#o.log(`internal error ending session ${this.#session.id}: ${errorDetails(error)}`))
      .finally(() => this.#o.onEnd?.());
  }
}
