/**
 * One client connection, whatever the transport: frames in, strict decode, validation, one
 * request at a time, replies out. Broken framing (bad length, a frame not completed within 5 s,
 * undecodable msgpack, a non-map) gets an error reply where possible and the connection is
 * closed; a well-framed bad request gets an error reply and the connection stays usable. When
 * the connection ends, however it ends, the session's taps are removed. A request that fails in
 * a way nobody foresaw (a bug) is logged and answered INTERNAL, and the connection goes on.
 *
 * What one client may cost (docs/protocol.md, "Connections"):
 * - a connection that holds no session taps and sends nothing for `idleMs` (socket: 5 s) is
 *   closed, as is one whose client stops reading its replies for as long; a session holding
 *   taps is never closed for idleness;
 * - after `maxRefusals` (8) refused requests in a row, the last one's reply is sent and the
 *   connection is closed;
 * - while more than `maxUnsentBytes` (64 KiB) of replies wait for the client to read them, no
 *   more bytes are read from it and no more requests are served: a client that sends and never
 *   reads costs a bounded amount of memory.
 */
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { decodeMessage, encodeBody } from '../../../shared/src/protocol/decode.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';
import { FRAME_DEADLINE_MS } from '../../../shared/src/protocol/limits.js';
import type { Reply } from '../../../shared/src/protocol/messages.js';
import { parseRequest } from '../../../shared/src/protocol/validate.js';
import type { AuditLog } from '../audit/audit.js';
import { DEFAULT_MAX_REFUSALS } from '../defaults.js';
import { errorDetails } from '../errors/details.js';
import type { Caller } from '../identity/caller.js';
import { sendWithFds } from '../native/fd-handoff.js';
import { closeFds } from '../net/fdtaps.js';
import type { Service, Session } from '../requests/service.js';
import { INTERNAL_MESSAGE } from '../requests/wire-error.js';

/** Requests queued on one connection beyond this close it (a client must wait for replies). */
const MAX_QUEUED = 16;
/** Reply bytes waiting for the client beyond which the connection stops reading. */
const DEFAULT_MAX_UNSENT_BYTES = 64 * 1024;

export interface ConnectionOptions {
  input: Readable;
  output: Writable;
  /** Close the transport. */
  close: () => void;
  /** Establish who is at the other end (once, before the first request is served). */
  identify: () => Promise<Caller>;
  service: Pick<Service, 'handle' | 'discard' | 'endSession'> & Partial<Pick<Service, 'takeFds'>>;
  /**
   * Fd handoff: the Unix socket that replies with fds go out on (sendmsg with SCM_RIGHTS), or why
   * this connection cannot carry fds (a pipe); absent: it cannot.
   */
  fds?: { socket: Socket } | { refusal: string } | undefined;
  audit: AuditLog;
  /** The helper's log (stderr): details of internal errors, which callers are not shown. */
  log: (message: string) => void;
  newSessionId: () => string;
  /** The peer as the kernel reported it at accept, for audit records before identification. */
  peer?: { uid: number; pid: number } | undefined;
  deadlineMs?: number;
  /**
   * Close the connection when it holds no session taps and nothing came from the client (or,
   * stalled, nothing was read by it) for this long; undefined: never (stdio).
   */
  idleMs?: number | undefined;
  /** Close the connection after this many refused requests in a row (default 8; 0: never). */
  maxRefusals?: number | undefined;
  /** Stop reading while more reply bytes than this wait for the client (default 64 KiB). */
  maxUnsentBytes?: number;
  /** Called once, as soon as the connection ends (its session's taps may still be going). */
  onClosed?: () => void;
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
  #idle: NodeJS.Timeout | undefined;
  /** Error replies since the last success. */
  #refusedInARow = 0;
  /** More reply bytes than maxUnsentBytes wait for the client: not reading, not serving. */
  #stalled = false;

  constructor(options: ConnectionOptions) {
    this.#o = options;
    const fds = options.fds ?? { refusal: 'fd handoff needs a Unix socket connection, and this one is not' };
    this.#session = { id: options.newSessionId(), nics: [], fdRefusal: 'refusal' in fds ? fds.refusal : undefined };
    options.input.on('data', (chunk: Buffer) => this.#receive(chunk));
    // A half-close ends the requests, not the replies: answer what was asked, then close.
    options.input.on('end', () => this.#halfClosed());
    options.input.on('close', () => {
      if (!this.#halfClosing) this.#end('connection closed');
    });
    options.input.on('error', (error) => this.#end(`connection error: ${error.message}`));
    options.output.on('error', () => this.#end('connection error while replying'));
    this.#armIdle();
  }

  #receive(chunk: Buffer): void {
    if (this.#closing) return;
    this.#disarmIdle();
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

  /**
   * Start the idle clock, if it applies and is not running. After a half-close only while
   * stalled: the client has said all it will, and must still read what it was sent.
   */
  #armIdle(): void {
    const ms = this.#o.idleMs;
    if (ms === undefined || this.#closing || (this.#halfClosing && !this.#stalled) || this.#idle !== undefined) return;
    this.#idle = setTimeout(() => {
      this.#idle = undefined;
      this.#idleCheck(ms);
    }, ms);
  }

  #disarmIdle(): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = undefined;
  }

  /**
   * The idle clock ran out: close a connection that holds no session taps and is waiting for
   * its client (to send a request, or to read the replies it was sent). A session's taps keep
   * it open; so does a request being served or a frame half received (the frame deadline
   * applies to that).
   */
  #idleCheck(ms: number): void {
    if (this.#closing || this.#session.nics.length > 0) return;
    const busy = !this.#stalled && (this.#draining !== undefined || this.#decoder.pending || this.#queue.length > 0);
    if (busy) {
      this.#armIdle();
      return;
    }
    const why = this.#stalled
      ? `the client read none of its replies for ${ms / 1000} s`
      : `no request for ${ms / 1000} s and no taps held`;
    this.#shut({ code: undefined, reason: 'idle', message: why });
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
      while (this.#queue.length > 0 && !this.#closing && !this.#stalled) {
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
    // Waiting for the client again: for its next request, or (stalled) for it to read.
    this.#armIdle();
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
      if (this.#closing) return;
      const message = error instanceof Error ? error.message : String(error);
      this.#o.audit.write({ event: 'identify', result: 'error', message, uid: this.#o.peer?.uid, pid: this.#o.peer?.pid });
      this.#fatal(new ProtocolError(ErrorCode.NoIdentity, `the helper cannot tell who you are: ${message}`));
      return;
    }
    let request;
    try {
      request = parseRequest(value);
    } catch (error) {
      const wire = error instanceof ProtocolError ? error : new ProtocolError(ErrorCode.BadRequest, 'invalid request');
      this.#o.audit.write({ event: 'request', caller: { uid: caller.uid, user: caller.user.name, pid: caller.pid }, result: 'rejected', code: wire.code, message: wire.message });
      this.#answer({ v: 1, id: wire.id ?? 0, ok: false, error: { code: wire.code, message: wire.message } });
      return;
    }
    serving.id = request.id;
    const reply = await this.#o.service.handle(request, caller, this.#session);
    const fds = this.#o.service.takeFds?.(reply);
    if (fds !== undefined) {
      await this.#answerWithFds(reply, fds, caller);
      return;
    }
    if (this.#ended && request.op === 'make-nics' && request.lifetime === 'persistent' && 'nics' in reply) {
      // Nobody will ever learn these taps' names: do not leave them behind.
      await this.#o.service.discard(reply.nics, caller, 'the client left before the reply');
      return;
    }
    this.#answer(reply);
  }

  /**
   * Send a request's reply and count refusals: after maxRefusals error replies in a row (an
   * INTERNAL error is the helper's, not the client's, and does not count), the connection is
   * closed once this reply is out.
   */
  #answer(reply: Reply): void {
    this.#send(reply);
    if (reply.ok) {
      this.#refusedInARow = 0;
      return;
    }
    if (reply.error.code === ErrorCode.Internal) return;
    this.#refusedInARow += 1;
    const max = this.#o.maxRefusals ?? DEFAULT_MAX_REFUSALS;
    if (max > 0 && this.#refusedInARow >= max) {
      this.#shut({ code: reply.error.code, reason: 'refusals', message: `${this.#refusedInARow} refused requests in a row` });
    }
  }

  /**
   * A reply with tap fds (handoff "fd"): sent with them as SCM_RIGHTS on its first byte, nothing
   * else written on the connection meanwhile (requests are served one at a time, and sendWithFds
   * waits until Node has nothing queued); then the helper's copies are closed, sent or not. A
   * reply that cannot be sent is audited; its taps die with the fds closed here, and the fd-tap
   * watch (records/fdtaps.ts) forgets them and removes their ports.
   */
  async #answerWithFds(reply: Reply, fds: readonly number[], caller: Caller): Promise<void> {
    try {
      const socket = this.#o.fds !== undefined && 'socket' in this.#o.fds ? this.#o.fds.socket : undefined;
      if (this.#closing || socket === undefined) throw new Error('the client left before the reply');
      await sendWithFds(socket, encodeFrame(encodeBody(reply)), fds);
      this.#refusedInARow = 0;
    } catch (error) {
      this.#o.audit.write({
        event: 'undelivered', uid: caller.uid, user: caller.user.name, result: 'error',
        why: `the reply with the tap fds could not be sent: ${(error as Error).message}`, ...('nics' in reply ? { taps: reply.nics } : {}),
      });
    } finally {
      closeFds(fds);
    }
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
    const output = this.#o.output;
    // write() says false once the output's buffer is past its high-water mark; 'drain' follows.
    const flowing = output.write(encodeFrame(encodeBody(reply)));
    if (flowing || this.#stalled || output.writableLength <= (this.#o.maxUnsentBytes ?? DEFAULT_MAX_UNSENT_BYTES)) return;
    // The client is not reading its replies: read nothing more from it, and serve nothing more,
    // until they are out. If that takes longer than the idle time, and no taps are held, close.
    this.#stalled = true;
    this.#o.input.pause();
    // A frame half received cannot be completed while nothing is read: its clock stops too.
    this.#disarmDeadline();
    output.once('drain', () => {
      this.#stalled = false;
      if (this.#closing) return;
      this.#disarmIdle();
      if (this.#decoder.pending) this.#armDeadline();
      this.#o.input.resume();
      if (this.#queue.length > 0) void this.#drain();
      else if (this.#draining === undefined) this.#armIdle();
    });
    this.#disarmIdle();
    this.#armIdle();
  }

  /**
   * Close the connection from this side without an error reply (idle, too many refusals):
   * audited with the peer, the output ended after what was sent, then the transport closed.
   */
  #shut(why: { code: string | undefined; reason: string; message: string }): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#disarmDeadline();
    this.#disarmIdle();
    this.#o.audit.write({
      event: 'connection', result: 'closed', reason: why.reason, ...(why.code === undefined ? {} : { code: why.code }), message: why.message,
      uid: this.#caller?.uid ?? this.#o.peer?.uid, pid: this.#caller?.pid ?? this.#o.peer?.pid,
    });
    this.#o.output.end?.();
    setImmediate(() => this.#o.close());
    this.#end(`closed by the helper: ${why.message}`);
  }

  /** Reply with the error (id 0: the request could not be read) and close. */
  #fatal(error: ProtocolError): void {
    if (this.#closing) return;
    this.#send({ v: 1, id: error.id ?? 0, ok: false, error: { code: error.code, message: error.message } });
    this.#closing = true;
    this.#disarmDeadline();
    this.#disarmIdle();
    this.#o.audit.write({ event: 'connection', result: 'closed', code: error.code, message: error.message, uid: this.#caller?.uid ?? this.#o.peer?.uid, pid: this.#caller?.pid ?? this.#o.peer?.pid });
    this.#o.output.end?.();
    setImmediate(() => this.#o.close());
    this.#end(`closed by the helper: ${error.message}`);
  }

  #halfClosed(): void {
    if (this.#closing) return;
    this.#halfClosing = true;
    this.#disarmIdle();
    if (this.#decoder.pending) {
      this.#fatal(new ProtocolError(ErrorCode.BadFrame, 'the connection ended in the middle of a frame'));
      return;
    }
    // Every frame already received is served (the queue drains), then the replies' side ends.
    this.#finishHalfClose();
  }

  /** After a half-close: once every frame received is served (and not before), end. */
  #finishHalfClose(): void {
    void this.#drain().then(() => {
      if (this.#closing) return;
      if (this.#queue.length > 0) {
        // Stalled on replies the client has not read: go on once they are out.
        this.#o.output.once('drain', () => this.#finishHalfClose());
        return;
      }
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
    this.#disarmIdle();
    this.#o.onClosed?.();
    void this.#inflight
      .then(() => this.#o.service.endSession(this.#session, this.#caller, why))
      .catch((error: unknown) => this.#o.log(`internal error ending session ${this.#session.id}: ${errorDetails(error)}`))
      .finally(() => this.#o.onEnd?.());
  }
}
