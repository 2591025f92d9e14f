/**
 * A Unix datagram socket bound at a path, standing in for the journal's native socket or syslog's
 * /dev/log (Node has no Unix datagram sockets; a small Python process listens). Each datagram
 * received is kept as bytes. With `hold`, nothing is read until `release()`: the socket's queue
 * fills as a busy journal's would; `drained()` then says when it has been read empty.
 *
 *   const log = await listenDatagrams(join(dir, 'journal.sock'));
 *   ... the helper sends ...
 *   const entry = await log.next((d) => parseJournal(d).get('XKVM_EVENT')?.[0] === 'request', 10_000);
 *   log.close();
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { signal } from './procs.js';
import { waitFor } from './wait.js';

const PYTHON = '/usr/bin/python3';

const LISTENER = `
import base64, os, select, signal, socket, sys
path, hold = sys.argv[1], sys.argv[2] == 'hold'
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
s.setblocking(False)
released = [not hold]
def release(signum, frame):
    released[0] = True
signal.signal(signal.SIGUSR1, release)
sys.stdout.write('ready\\n')
sys.stdout.flush()
while not released[0]:
    signal.pause()
while True:
    try:
        data = s.recv(1 << 20)
    except BlockingIOError:
        sys.stdout.write('idle\\n')
        sys.stdout.flush()
        select.select([s], [], [])
        continue
    sys.stdout.write(base64.b64encode(data).decode() + '\\n')
    sys.stdout.flush()
`;

export interface DatagramListener {
  readonly path: string;
  /** Every datagram received so far, in order. */
  readonly received: Buffer[];
  /** The first datagram (received or to come) that satisfies pred. */
  next(pred: (d: Buffer) => boolean, deadlineMs: number, what?: string): Promise<Buffer>;
  /** Start reading (after `hold`). */
  release(): void;
  /** Resolves once the listener, released, has read everything that was queued. */
  drained(deadlineMs: number): Promise<void>;
  close(): void;
}

export async function listenDatagrams(path: string, options: { hold?: boolean } = {}): Promise<DatagramListener> {
  const child = spawn(PYTHON, ['-c', LISTENER, path, options.hold === true ? 'hold' : 'read'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const received: Buffer[] = [];
  let ready = false;
  let idle = 0;
  let partial = '';
  let stderr = '';
  let exited = false;
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  child.on('close', () => { exited = true; });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line === 'ready') ready = true;
      else if (line === 'idle') idle += 1;
      else received.push(Buffer.from(line, 'base64'));
    }
  });
  await waitFor(() => (exited ? Promise.reject(new Error(`the listener exited: ${stderr}`)) : ready && existsSync(path)), 10_000,
    { what: `a datagram listener on ${path}` });
  return {
    path,
    received,
    async next(pred, deadlineMs, what = 'a datagram') {
      const { value } = await waitFor(() => received.find(pred), deadlineMs,
        { what: `${what} on ${path}`, describe: () => `${received.length} received: ${received.slice(-3).map((d) => JSON.stringify(d.toString('latin1'))).join(', ')}` });
      return value;
    },
    release: () => {
      if (child.pid !== undefined) signal(child.pid, 'SIGUSR1');
    },
    async drained(deadlineMs) {
      await waitFor(() => idle > 0, deadlineMs, { what: `the listener on ${path} to empty its queue` });
    },
    close: () => {
      if (child.pid !== undefined && !exited) signal(child.pid, 'SIGKILL');
    },
  };
}

/**
 * The fields of one journal entry in systemd's native protocol: `KEY=value\n`, or `KEY\n`, a
 * 64-bit little-endian length, the value, `\n`. Throws on anything else.
 */
export function parseJournal(data: Buffer): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  let at = 0;
  while (at < data.length) {
    const nl = data.indexOf(0x0a, at);
    if (nl < 0) throw new Error(`journal entry: a field without its newline at byte ${at}`);
    const head = data.subarray(at, nl).toString('utf8');
    let key: string;
    let value: string;
    const eq = head.indexOf('=');
    if (eq >= 0) {
      key = head.slice(0, eq);
      value = head.slice(eq + 1);
      at = nl + 1;
    } else {
      key = head;
      const length = Number(data.readBigUInt64LE(nl + 1));
      value = data.subarray(nl + 9, nl + 9 + length).toString('utf8');
      if (data[nl + 9 + length] !== 0x0a) throw new Error(`journal entry: binary field ${key} does not end in a newline`);
      at = nl + 10 + length;
    }
    if (!/^[A-Z0-9_]+$/.test(key) || key.startsWith('_')) throw new Error(`journal entry: bad field name ${JSON.stringify(key)}`);
    fields.set(key, [...(fields.get(key) ?? []), value]);
  }
  return fields;
}
