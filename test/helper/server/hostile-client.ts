// A hostile client of the helper's socket, run as an ordinary user (runuser, in the test
// namespace) with one JSON spec as its argument; it says what happens as JSON lines on stdout.
// It only uses what any local user may: connect, send well-formed frames, read or not read.
//
//   {"mode":"hold","socket":S,"count":256,"tap":true}
//       opens `count` connections one after the other and sends nothing on them (with `tap`, the
//       first one first asks make-nics for a session tap on br0 and keeps it). Says
//       {"event":"opened","count":N} once all are open, then for every reply
//       {"event":"reply","i":I,"ok":B,"code":C,"message":M} and every close {"event":"closed","i":I}.
//       Holds them until stdin ends.
//   {"mode":"flood","socket":S,"total":20000,"lanes":4,"request":{...}}
//       sends `request` over and over on `lanes` connections at a time, one request in flight
//       each (a reply, then the next), reconnecting whenever the helper closes one, until
//       `total` replies came. Says {"event":"done","replies":{CODE:N},"connections":N,"refusedAtConnect":N}.
//
// (A client that never reads its replies is unread-client.py: it needs TIOCOUTQ.)
import { connect, type Socket } from 'node:net';
import { decodeMessage, encodeBody } from '../../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';

type Spec =
  | { mode: 'hold'; socket: string; count: number; tap?: boolean }
  | { mode: 'flood'; socket: string; total: number; lanes: number; request: Record<string, unknown> };

interface ReplyLike {
  id?: number;
  ok?: boolean;
  error?: { code?: string; message?: string };
}

function say(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path, allowHalfOpen: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      // EPIPE and resets after the helper closed a connection are part of the game.
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

/** Calls `onReply` for each reply frame and `onClose` once when the helper's side ends. */
function listen(socket: Socket, onReply: (reply: ReplyLike) => void, onClose: () => void): void {
  const decoder = new FrameDecoder();
  socket.on('data', (chunk: Buffer) => {
    for (const body of decoder.push(chunk)) onReply(decodeMessage(body) as ReplyLike);
  });
  let closed = false;
  const once = (): void => {
    if (closed) return;
    closed = true;
    onClose();
  };
  // half-open sockets: the helper's end is the end
  socket.once('end', once);
  socket.once('close', once);
}

async function hold(spec: Extract<Spec, { mode: 'hold' }>): Promise<void> {
  const sockets: Socket[] = [];
  for (let i = 0; i < spec.count; i += 1) {
    let socket: Socket;
    try {
      socket = await open(spec.socket);
    } catch (error) {
      say({ event: 'connect-failed', i, message: (error as Error).message });
      continue;
    }
    sockets.push(socket);
    let answered: (() => void) | undefined;
    listen(socket, (reply) => {
      say({ event: 'reply', i, ok: reply.ok === true, code: reply.error?.code, message: reply.error?.message, nics: (reply as { nics?: unknown }).nics });
      answered?.();
    }, () => say({ event: 'closed', i }));
    if (i === 0 && spec.tap === true) {
      await new Promise<void>((resolve) => {
        answered = resolve;
        socket.write(encodeFrame(encodeBody({ v: 1, id: 1, op: 'make-nics', bridges: ['br0'], lifetime: 'session' })));
      });
    }
  }
  say({ event: 'opened', count: sockets.length });
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const s of sockets) s.destroy();
    process.exit(0);
  });
}

async function flood(spec: Extract<Spec, { mode: 'flood' }>): Promise<void> {
  const replies: Record<string, number> = {};
  let received = 0;
  let connections = 0;
  let refusedAtConnect = 0;
  const frame = encodeFrame(encodeBody(spec.request));
  const lane = async (): Promise<void> => {
    while (received < spec.total) {
      const socket = await open(spec.socket);
      connections += 1;
      let waiting: ((reply: ReplyLike | undefined) => void) | undefined;
      let closed = false;
      let first = true;
      listen(socket, (reply) => {
        const w = waiting;
        waiting = undefined;
        w?.(reply);
      }, () => {
        closed = true;
        const w = waiting;
        waiting = undefined;
        w?.(undefined);
      });
      while (!closed && received < spec.total) {
        const reply = await new Promise<ReplyLike | undefined>((resolve) => {
          waiting = resolve;
          socket.write(frame);
        });
        if (reply === undefined) break;
        // a refusal at connect (id 0, QUOTA) is not a reply to a request
        if (first && reply.id === 0 && reply.error?.code === 'QUOTA') {
          refusedAtConnect += 1;
          break;
        }
        first = false;
        received += 1;
        const code = reply.ok === true ? 'ok' : reply.error?.code ?? '?';
        replies[code] = (replies[code] ?? 0) + 1;
      }
      socket.destroy();
    }
  };
  await Promise.all(Array.from({ length: spec.lanes }, () => lane()));
  say({ event: 'done', replies, connections, refusedAtConnect });
  process.exit(0);
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const run = spec.mode === 'hold' ? hold(spec) : flood(spec);
run.catch((error: unknown) => {
  say({ event: 'error', message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
});
