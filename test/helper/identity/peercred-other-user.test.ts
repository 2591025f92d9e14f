import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { peerCredentials, type PeerCredentials } from '../../../helper/src/identity/peercred.js';

const USER = 'xkvmtest-peer';

/** uid and primary gid of USER, creating it (a system user with no home or shell) if missing. */
function testUser(): { uid: number; gid: number } {
  if (process.geteuid?.() !== 0) {
    throw new Error(`this suite must run as root: it creates the user ${USER} and runs a process as it`);
  }
  let entry = spawnSync('getent', ['passwd', USER], { encoding: 'utf8' });
  if (entry.status !== 0) {
    const add = spawnSync('/usr/sbin/useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent',
      '--shell', '/usr/sbin/nologin', USER], { encoding: 'utf8' });
    if (add.status !== 0) throw new Error(`useradd ${USER} failed: ${add.stderr}`);
    entry = spawnSync('getent', ['passwd', USER], { encoding: 'utf8' });
  }
  const [, , uid, gid] = entry.stdout.trim().split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

test('a connection from a process run as another user reports that user and that process', async () => {
  const user = testUser();
  assert.is.not(user.uid, process.geteuid?.());
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
    const child = spawn('runuser', ['-u', USER, '--', process.execPath, '-e', script],
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
      assert.is(outcome.creds.uid, user.uid);
      assert.is(outcome.creds.gid, user.gid);
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
