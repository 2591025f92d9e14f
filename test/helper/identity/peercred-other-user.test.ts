import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { peerCredentials, type PeerCredentials } from '../../../helper/src/identity/peercred.js';
import { createTestUser, removeTestUser, type TestUser } from '../../support/netns.js';

let user: TestUser | undefined;

test.before(() => {
  user = createTestUser('peer');
});

test.after(() => {
  if (user !== undefined) removeTestUser(user);
});

test('a connection from a process run as another user reports that user and that process', async () => {
  const { name, uid, gid } = user!;
  assert.is.not(uid, process.geteuid?.());
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-peercred-'));
  try {
    chmodSync(dir, 0o755);
    const path = join(dir, 'helper.sock');
    const server = createServer();
    server.listen(path);
    await once(server, 'listening');
    chmodSync(path, 0o666);

    // The server records the kernel's view at once, then reads the pid the child says it has.
    const seen = new Promise<{ creds: PeerCredentials; said: string }>((resolve, reject) => {
      server.once('connection', (socket: Socket) => {
        let creds: PeerCredentials;
        try {
          creds = peerCredentials(socket);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        let said = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => { said += chunk; });
        socket.on('end', () => { socket.end(); resolve({ creds, said }); });
        socket.on('error', reject);
      });
    });

    const script = `const s = require('node:net').connect(${JSON.stringify(path)}, () => s.end(String(process.pid)));`
      + 's.on("error", (e) => { console.error(e.message); process.exit(2); });';
    const child = spawn('runuser', ['-u', name, '--', process.execPath, '-e', script],
      { cwd: dir, stdio: ['ignore', 'inherit', 'pipe'], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

    const timeout = setTimeout(() => child.kill('SIGKILL'), 10_000);
    try {
      const outcome = await Promise.race([seen, exited.then(([code, signal]) => {
        throw new Error(`the child exited (${code ?? signal}) before connecting: ${stderr}`);
      })]);
      const [code] = await exited;
      assert.is(code, 0, stderr);
      assert.is(outcome.creds.uid, uid);
      assert.is(outcome.creds.gid, gid);
      assert.is(String(outcome.creds.pid), outcome.said);
      assert.is.not(outcome.creds.pid, process.pid);
    } finally {
      clearTimeout(timeout);
      server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
