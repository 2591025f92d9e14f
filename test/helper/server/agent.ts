// Runs as an ordinary user (runuser, inside the test namespace) and holds connections to the
// helper for the test, which drives it with one JSON command a line on stdin and gets one JSON
// answer a line on stdout, matched by `seq`. Commands run concurrently (a slow `next` does not
// hold up the others):
//
//   {"seq":1,"op":"open","conn":"a","path":"/tmp/xkvmh-x/helper.sock"}  -> {"seq":1,"ok":true,"value":{"pid":123}}
//   {"seq":2,"op":"ask","conn":"a","value":{...request...}}              -> {"seq":2,"ok":true,"value":<Next>}
//   {"seq":3,"op":"send","conn":"a","hex":"00000001c1"}                 -> {"seq":3,"ok":true,"value":null}
//   {"seq":4,"op":"next","conn":"a","timeoutMs":3000}                   -> {"seq":4,"ok":true,"value":<Next>}
//   {"seq":5,"op":"close","conn":"a"}
//
// The agent exits when stdin ends, closing every connection (which ends their sessions).
import { createInterface } from 'node:readline';
import { WireConnection } from './wire.js';

export type AgentCommand =
  | { op: 'open'; conn: string; path: string }
  | { op: 'ask'; conn: string; value: object; timeoutMs?: number }
  | { op: 'request'; conn: string; value: object }
  | { op: 'send'; conn: string; hex: string }
  | { op: 'next'; conn: string; timeoutMs?: number }
  | { op: 'end'; conn: string }
  | { op: 'close'; conn: string };

const connections = new Map<string, WireConnection>();

function get(name: string): WireConnection {
  const c = connections.get(name);
  if (c === undefined) throw new Error(`no connection ${name}`);
  return c;
}

async function perform(command: AgentCommand): Promise<unknown> {
  switch (command.op) {
    case 'open':
      connections.set(command.conn, await WireConnection.connect(command.path));
      return { pid: process.pid, uid: process.getuid?.() };
    case 'ask':
      return get(command.conn).ask(command.value, command.timeoutMs);
    case 'request':
      await get(command.conn).request(command.value);
      return null;
    case 'send':
      await get(command.conn).write(Buffer.from(command.hex, 'hex'));
      return null;
    case 'next':
      return get(command.conn).next(command.timeoutMs);
    case 'end':
      get(command.conn).end();
      return null;
    case 'close':
      get(command.conn).destroy();
      connections.delete(command.conn);
      return null;
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let seq: unknown = null;
  void (async () => {
    try {
      const command = JSON.parse(line) as AgentCommand & { seq: unknown };
      seq = command.seq;
      const value = await perform(command);
      process.stdout.write(`${JSON.stringify({ seq, ok: true, value })}\n`);
    } catch (error) {
      process.stdout.write(`${JSON.stringify({ seq, ok: false, error: (error as Error).message })}\n`);
    }
  })();
});
lines.on('close', () => {
  for (const c of connections.values()) c.destroy();
  process.exit(0);
});
