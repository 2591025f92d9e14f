import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { IdentityError } from '../../../helper/src/identity/errors.js';
import { peerCredentials, peerCredentialsFromFd } from '../../../helper/src/identity/peercred.js';
import { AddonError, defaultAddonPath, loadAddon } from '../../../helper/src/native/addon.js';

/** The error `fn` throws (fails the test when it throws nothing). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw, got none');
}

function causeCode(error: unknown): unknown {
  assert.instance(error, IdentityError);
  const cause: unknown = (error as IdentityError).cause;
  return typeof cause === 'object' && cause !== null ? Reflect.get(cause, 'code') : undefined;
}

/** Runs `body` with a server listening on `address`, handing it the server's first connection. */
async function withConnection<T>(
  listenOn: string | { host: string; port: number },
  body: (accepted: Socket, client: Socket) => T,
): Promise<T> {
  const server: Server = createServer();
  server.listen(listenOn);
  await once(server, 'listening');
  const address = server.address();
  try {
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = typeof address === 'string' || address === null
      ? connect(String(address))
      : connect(address.port, '127.0.0.1');
    await once(client, 'connect');
    const [socket] = await accepted;
    try {
      return body(socket, client);
    } finally {
      socket.destroy();
      client.destroy();
    }
  } finally {
    server.close();
  }
}

test('the addon is built where the loader looks for it', () => {
  const path = defaultAddonPath();
  assert.ok(path?.endsWith('/helper/native/build/Release/peercred.node'), String(path));
  assert.type(loadAddon().peerCred, 'function');
});

test('a connection from this process reports this process as the peer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-peercred-'));
  try {
    const creds = await withConnection(join(dir, 's'), (accepted) => peerCredentials(accepted));
    assert.equal(creds, { pid: process.pid, uid: process.geteuid?.(), gid: process.getegid?.() });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the connecting side sees the listening process as its peer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-peercred-'));
  try {
    const creds = await withConnection(join(dir, 's'), (_accepted, client) => peerCredentials(client));
    assert.is(creds.pid, process.pid);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a closed socket is an IdentityError, not a crash', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-peercred-'));
  try {
    const error = await withConnection(join(dir, 's'), (accepted) => {
      accepted.destroy();
      return thrown(() => peerCredentials(accepted));
    });
    assert.instance(error, IdentityError);
    assert.is((error as IdentityError).code, 'NO_IDENTITY');
    assert.match((error as IdentityError).message, /already closed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a regular file descriptor is refused as not a socket', () => {
  const fd = openSync('/proc/self/stat', 'r');
  try {
    const error = thrown(() => peerCredentialsFromFd(fd));
    assert.is(causeCode(error), 'ENOTSOCK');
    assert.is((error as IdentityError).code, 'NO_IDENTITY');
    assert.match((error as IdentityError).message, /non-socket/);
  } finally {
    closeSync(fd);
  }
});

test('a closed file descriptor is refused as a bad descriptor', () => {
  const fd = openSync('/dev/null', 'r');
  closeSync(fd);
  assert.is(causeCode(thrown(() => peerCredentialsFromFd(fd))), 'EBADF');
});

test('a TCP connection is refused as not a Unix socket', async () => {
  const error = await withConnection({ host: '127.0.0.1', port: 0 }, (accepted) => thrown(() => peerCredentials(accepted)));
  assert.is(causeCode(error), 'EAFNOSUPPORT');
});

test('the addon accepts only one integer file descriptor in range', () => {
  const raw: unknown = createRequire(import.meta.url)(defaultAddonPath() ?? 'missing');
  const peerCred: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, 'peerCred') : undefined;
  if (typeof peerCred !== 'function') throw new Error('the addon exports no peerCred()');
  const bad: unknown[][] = [[], ['3'], [3n], [null], [-1], [1.5], [Number.NaN], [Infinity], [2 ** 31], [3, 4]];
  for (const args of bad) {
    const error = thrown(() => Reflect.apply(peerCred, undefined, args));
    assert.ok(error instanceof TypeError || error instanceof RangeError, `${String(args)}: ${String(error)}`);
  }
});

test('a missing addon is an AddonError that says how to build it', () => {
  const error = thrown(() => loadAddon('/nonexistent/peercred.node'));
  assert.instance(error, AddonError);
  assert.is((error as AddonError).code, 'ADDON_MISSING');
  assert.match((error as AddonError).message, /not built/);
  assert.match((error as AddonError).message, /npm rebuild/);
  assert.match((error as AddonError).message, /node helper\/native\/build\.mjs/);
  assert.ok((error as AddonError).cause instanceof Error);
});

test.run();
