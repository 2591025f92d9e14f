/**
 * A small client for lifecycle tests, run as an ordinary user (node dist/test/support/hold-session.js
 * SPEC): it opens `connections` connections to the helper socket with the client's own code
 * (client/src/helper/connection.ts), says `{"event":"ready","pid":N}`, sends one make-nics on every
 * connection at once (at once, or when a line "go" arrives on stdin if `waitGo`), prints
 * `{"event":"result",...}` and then holds the connections (the session) until stdin ends or it is
 * killed. A lost connection is reported (`{"event":"lost"}`) and the process keeps running, like
 * a VM whose helper crashed. One JSON object a line on stdout.
 */
import { openConnection, type HelperConnection } from '../../client/src/helper/connection.js';
import type { Lifetime } from '../../shared/src/protocol/messages.js';

export interface HoldSpec {
  readonly socket: string;
  readonly connections: number;
  readonly bridges: readonly string[];
  /** The guest's MAC for each bridge (null: none), sent as nics[].mac; bridges alone when absent. */
  readonly macs?: readonly (string | null)[];
  readonly lifetime: Lifetime;
  readonly waitGo: boolean;
}

export type HoldEvent =
  | { event: 'ready'; pid: number }
  | { event: 'result'; pid: number; results: Array<{ ok: true; nics: Array<{ bridge: string; tap: string; type: string }> } | { ok: false; code: string; message: string }> }
  | { event: 'lost'; message: string }
  | { event: 'error'; message: string };

function say(event: HoldEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as HoldSpec;
  const connections: HelperConnection[] = await Promise.all(Array.from({ length: spec.connections },
    () => openConnection({ kind: 'socket', path: spec.socket, from: 'XKVM_HELPER_SOCKET' })));
  for (const c of connections) c.onLost((error) => say({ event: 'lost', message: error.message }));
  let sent = false;
  const send = async (): Promise<void> => {
    if (sent) return;
    sent = true;
    const macs = spec.macs;
    const what = macs === undefined ? { bridges: [...spec.bridges] }
      : { nics: spec.bridges.map((bridge, i) => ({ bridge, ...(macs[i] == null ? {} : { mac: macs[i] }) })) };
    const replies = await Promise.all(connections.map((c) => c.request({ v: 1, op: 'make-nics', ...what, lifetime: spec.lifetime })
      .catch((error: Error) => ({ ok: false as const, error: { code: 'LOST', message: error.message } }))));
    say({
      event: 'result',
      pid: process.pid,
      results: replies.map((r) => (r.ok && 'nics' in r ? { ok: true as const, nics: r.nics } : { ok: false as const, code: 'error' in r ? r.error.code : '?', message: 'error' in r ? r.error.message : '?' })),
    });
  };
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    input += chunk;
    if (input.split('\n').includes('go')) void send();
  });
  process.stdin.on('end', () => {
    for (const c of connections) c.close();
    process.exit(0);
  });
  say({ event: 'ready', pid: process.pid });
  if (!spec.waitGo) await send();
}

main().catch((error: unknown) => {
  say({ event: 'error', message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
});
