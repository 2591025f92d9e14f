import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ClientError } from '../../../client/src/errors.js';
import { openConnection } from '../../../client/src/helper/connection.js';
import { INSTALLED_HELPER, INSTALLED_SOCKET, locateHelper } from '../../../client/src/helper/locate.js';
import { makeNics, ovsCleanup } from '../../../client/src/helper/session.js';
import { errorReply, withFakeHelper, idOf, nicsFor, removedReply, within, type Action, type Script } from '../../support/fake-helper.js';

const DEADLINE = 5000;
/** Where locateHelper looks for pkexec. */
const PKEXEC = '/usr/bin/pkexec';

/** The rejection of `promise`, which must be a ClientError with the HELPER code. */
async function helperError(promise: Promise<unknown>, what: string): Promise<ClientError> {
  let caught: unknown;
  try {
    await within(DEADLINE, what, promise);
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, ClientError, `${what}: expected a ClientError, got ${String(caught)}`);
  assert.is((caught as ClientError).code, 'HELPER');
  return caught as ClientError;
}

/** Decoded maps have a null prototype; compare them as plain data. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

/** The nics for these bridges, without per-NIC options. */
const nics = (...bridges: string[]): Array<{ bridge: string }> => bridges.map((bridge) => ({ bridge }));

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));

test('makeNics sends exactly {v:1, id, op:"make-nics", bridges, lifetime:"session"} and returns the nics', async () => {
  await withFakeHelper((r) => ({ reply: nicsFor(r) }), async (helper) => {
    const session = await within(DEADLINE, 'makeNics', makeNics(nics('br0', 'virbr0'), 'session', helper.location));
    assert.is(helper.requests.length, 1);
    const request = helper.requests[0]!;
    const value = request.value as Record<string, unknown>;
    assert.equal(Object.keys(value).sort(), ['bridges', 'id', 'lifetime', 'op', 'v']);
    assert.is(value['v'], 1);
    assert.is(value['op'], 'make-nics');
    assert.equal(plain(value['bridges']), ['br0', 'virbr0']);
    assert.is(value['lifetime'], 'session');
    const id = value['id'];
    assert.ok(typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= 0xffff_ffff, `id ${String(id)}`);
    assert.not.ok('invalid' in request.parsed, 'the helper\'s own validator accepts the request');
    assert.equal(session.nics, [
      { bridge: 'br0', tap: 'tapvm0', type: 'brctl' },
      { bridge: 'virbr0', tap: 'tapvm1', type: 'brctl' },
    ]);
    session.connection.close();
  });
});

test('the session\'s connection stays open until it is closed, and closing it ends the socket the helper sees', async () => {
  await withFakeHelper((r) => ({ reply: nicsFor(r, 'ovs') }), async (helper) => {
    const session = await within(DEADLINE, 'makeNics', makeNics(nics('br0'), 'session', helper.location));
    const connection = await helper.connection();
    await tick();
    assert.is(connection.hasEnded, false, 'the helper saw the end while the session was open');
    session.connection.close();
    await within(DEADLINE, 'the helper seeing the end', connection.ended);
    session.connection.close(); // twice is harmless
  });
});

test('lifetime "persistent" is passed on as asked (tap-control)', async () => {
  await withFakeHelper((r) => ({ reply: nicsFor(r) }), async (helper) => {
    const session = await within(DEADLINE, 'makeNics', makeNics(nics('br0'), 'persistent', helper.location));
    assert.is((helper.requests[0]!.value as Record<string, unknown>)['lifetime'], 'persistent');
    session.connection.close();
  });
});

test('a reply that arrives one byte at a time is read whole', async () => {
  await withFakeHelper((r) => ({ trickle: nicsFor(r) }), async (helper) => {
    const session = await within(DEADLINE, 'makeNics', makeNics(nics('br0'), 'session', helper.location));
    assert.equal(session.nics, [{ bridge: 'br0', tap: 'tapvm0', type: 'brctl' }]);
    session.connection.close();
  });
});

test('an error reply becomes a ClientError carrying the helper\'s message with control characters escaped', async () => {
  const message = 'user alice may not use br0\u001b[2J\nxkvm: fake line\u0007\u009b';
  await withFakeHelper((r) => ({ reply: errorReply(r, 'DENIED', message) }), async (helper) => {
    const error = await helperError(makeNics(nics('br0'), 'session', helper.location), 'makeNics refused');
    assert.ok(error.message.includes('user alice may not use br0\\e[2J\\nxkvm: fake line\\x07\\x9b'), error.message);
    assert.ok(error.message.includes('DENIED'), error.message);
    // eslint-disable-next-line no-control-regex
    assert.not.match(error.message, /[\u0000-\u001f\u007f-\u009f]/);
    await within(DEADLINE, 'the connection closing after a refusal', (await helper.connection()).ended);
  });
});

test('a reply with taps for other bridges than asked is refused and the connection closed', async () => {
  const answers: Array<(r: Parameters<Script>[0]) => object> = [
    (r) => ({ v: 1, id: idOf(r), ok: true, nics: [{ bridge: 'br1', tap: 'tapvm0', type: 'brctl' }, { bridge: 'br0', tap: 'tapvm1', type: 'brctl' }] }),
    (r) => ({ v: 1, id: idOf(r), ok: true, nics: [{ bridge: 'br0', tap: 'tapvm0', type: 'brctl' }] }),
    (r) => ({ v: 1, id: idOf(r), ok: true, nics: [{ bridge: 'br0', tap: 'tapvm0', type: 'brctl' }, { bridge: 'br1', tap: 'tapvm1', type: 'brctl' }, { bridge: 'br2', tap: 'tapvm2', type: 'brctl' }] }),
    (r) => ({ v: 1, id: idOf(r), ok: true, nics: [] }),
  ];
  for (const answer of answers) {
    await withFakeHelper((r) => ({ reply: answer(r) }), async (helper) => {
      const error = await helperError(makeNics(nics('br0', 'br1'), 'session', helper.location), 'makeNics with wrong bridges');
      assert.match(error.message, /other bridges/);
      await within(DEADLINE, 'the connection closing', (await helper.connection()).ended);
    });
  }
});

test('a malformed reply (not msgpack, wrong shape, bad names, bad frame, unknown id) is an error, not a crash', async () => {
  const cases: Array<[string, (r: Parameters<Script>[0]) => Action | Action[]]> = [
    ['not msgpack', () => ({ body: Buffer.from([0xc1]) })],
    ['JSON, not msgpack', (r) => ({ body: Buffer.concat([Buffer.from(JSON.stringify(nicsFor(r))), Buffer.from([0])]) })],
    ['an extension type', () => ({ body: Buffer.from([0xd4, 0x01, 0x00]) })],
    ['an array, not a map', () => ({ reply: ['not', 'a', 'map'] })],
    ['no nics', (r) => ({ reply: { v: 1, id: idOf(r), ok: true } })],
    ['ok not a boolean', (r) => ({ reply: { v: 1, id: idOf(r), ok: 'yes', nics: [] } })],
    ['a bad tap name', (r) => ({ reply: { v: 1, id: idOf(r), ok: true, nics: [{ bridge: 'br0', tap: '-rf /', type: 'brctl' }] } })],
    ['a bad nic type', (r) => ({ reply: { v: 1, id: idOf(r), ok: true, nics: [{ bridge: 'br0', tap: 'tapvm0', type: 'veth' }] } })],
    ['a nic MTU no tap can have', (r) => ({ reply: { v: 1, id: idOf(r), ok: true, nics: [{ bridge: 'br0', tap: 'tapvm0', type: 'brctl', mtu: 0 }] } })],
    ['an error without a message', (r) => ({ reply: { v: 1, id: idOf(r), ok: false, error: 'nope' } })],
    ['protocol version 2', (r) => ({ reply: { ...nicsFor(r), v: 2 } })],
    ['an id never asked', (r) => ({ reply: { ...nicsFor(r), id: idOf(r) + 1000 } })],
    ['a zero frame length', () => ({ raw: Buffer.from([0, 0, 0, 0]) })],
    ['an oversized frame length', () => ({ raw: Buffer.from([0xff, 0xff, 0xff, 0xff]) })],
    ['a __proto__ key', (r) => ({ body: Buffer.concat([Buffer.from([0x85, 0xa9]), Buffer.from('__proto__'), Buffer.from([0x80]), mapEntries(nicsFor(r))]) })],
  ];
  for (const [what, script] of cases) {
    await withFakeHelper((r) => script(r), async (helper) => {
      const error = await helperError(makeNics(nics('br0'), 'session', helper.location), what);
      assert.not.match(error.message, /closed the connection/, `${what}: the reply itself must be the reason`);
      await within(DEADLINE, `${what}: the connection closing`, (await helper.connection()).ended);
    });
  }
});

/** The key/value pairs of a reply map without the map's header byte (for hand-built maps). */
function mapEntries(reply: object): Buffer {
  const entries = Object.entries(reply);
  const parts: Buffer[] = [];
  for (const [key, value] of entries) {
    parts.push(Buffer.from([0xa0 | key.length]), Buffer.from(key));
    parts.push(msgpackValue(value));
  }
  return Buffer.concat(parts);
}
function msgpackValue(value: unknown): Buffer {
  if (value === true) return Buffer.from([0xc3]);
  if (value === false) return Buffer.from([0xc2]);
  if (typeof value === 'number') return Buffer.from([0xce, (value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]);
  if (typeof value === 'string') return Buffer.concat([Buffer.from([0xa0 | Buffer.byteLength(value)]), Buffer.from(value)]);
  if (Array.isArray(value)) return Buffer.concat([Buffer.from([0x90 | value.length]), ...value.map(msgpackValue)]);
  const entries = Object.entries(value as object);
  return Buffer.concat([Buffer.from([0x80 | entries.length]), ...entries.map(([k, v]) => Buffer.concat([msgpackValue(k), msgpackValue(v)]))]);
}

test('the helper closing the connection before answering is an error', async () => {
  await withFakeHelper(() => ({ close: true }), async (helper) => {
    const error = await helperError(makeNics(nics('br0'), 'session', helper.location), 'makeNics with an early close');
    assert.match(error.message, /closed the connection/);
  });
});

test('the helper closing in the middle of a frame is an error', async () => {
  await withFakeHelper(() => [{ raw: Buffer.from([0, 0, 0, 40, 0x83]) }, { close: true }], async (helper) => {
    const error = await helperError(makeNics(nics('br0'), 'session', helper.location), 'makeNics with a truncated reply');
    assert.match(error.message, /closed the connection/);
  });
});

test('a helper that goes away during the session is reported to onLost; the client\'s own close is not', async () => {
  await withFakeHelper((r) => ({ reply: nicsFor(r) }), async (helper) => {
    const session = await within(DEADLINE, 'makeNics', makeNics(nics('br0'), 'session', helper.location));
    const lost = new Promise<Error>((resolve) => session.connection.onLost(resolve));
    (await helper.connection()).socket.end();
    const error = await within(DEADLINE, 'onLost', lost);
    assert.instance(error, ClientError);
    session.connection.close();
  });
  await withFakeHelper((r) => ({ reply: nicsFor(r) }), async (helper) => {
    const session = await within(DEADLINE, 'makeNics', makeNics(nics('br0'), 'session', helper.location));
    let called = false;
    session.connection.onLost(() => { called = true; });
    session.connection.close();
    await within(DEADLINE, 'the end', (await helper.connection()).ended);
    await tick();
    assert.is(called, false);
  });
});

test('a request after the connection is gone fails at once', async () => {
  await withFakeHelper((r) => ({ reply: nicsFor(r) }), async (helper) => {
    const connection = await within(DEADLINE, 'connect', openConnection(helper.location));
    connection.close();
    const error = await helperError(connection.request({ v: 1, op: 'make-nics', bridges: ['br0'], lifetime: 'session' }), 'request after close');
    assert.match(error.message, /closed/);
  });
});

test('two requests on one connection get different ids and each its own answer', async () => {
  await withFakeHelper((r, n) => ({ reply: n === 0 ? nicsFor(r) : removedReply(r, [{ bridge: 'br0', tap: 'tapvm0' }]) }), async (helper) => {
    const connection = await within(DEADLINE, 'connect', openConnection(helper.location));
    const [a, b] = await within(DEADLINE, 'two requests', Promise.all([
      connection.request({ v: 1, op: 'make-nics', bridges: ['br0'], lifetime: 'session' }),
      connection.request({ v: 1, op: 'ovs-cleanup', ports: [{ bridge: 'br0', tap: 'tapvm0' }] }),
    ]));
    assert.ok(a.ok && 'nics' in a);
    assert.ok(b.ok && 'removed' in b);
    assert.is.not(idOf(helper.requests[0]!), idOf(helper.requests[1]!));
    connection.close();
  });
});

test('ovsCleanup sends exactly {v:1, id, op:"ovs-cleanup", ports}, returns what was removed, and closes', async () => {
  const ports = [{ bridge: 'ovsbr0', tap: 'tapvm3' }, { bridge: 'ovsbr1', tap: 'tapvm4' }];
  await withFakeHelper((r) => ({ reply: removedReply(r, [ports[0]!]) }), async (helper) => {
    const removed = await within(DEADLINE, 'ovsCleanup', ovsCleanup(ports, helper.location));
    assert.equal(removed, [ports[0]]);
    const request = helper.requests[0]!;
    const value = request.value as Record<string, unknown>;
    assert.equal(Object.keys(value).sort(), ['id', 'op', 'ports', 'v']);
    assert.is(value['v'], 1);
    assert.is(value['op'], 'ovs-cleanup');
    assert.equal(plain(value['ports']), ports);
    assert.not.ok('invalid' in request.parsed);
    await within(DEADLINE, 'the connection closing', (await helper.connection()).ended);
  });
});

test('ovsCleanup: an error reply or an answer without "removed" is an error and the connection is closed', async () => {
  await withFakeHelper((r) => ({ reply: errorReply(r, 'NOT_OWNER', 'tapvm3 is not yours') }), async (helper) => {
    const error = await helperError(ovsCleanup([{ bridge: 'ovsbr0', tap: 'tapvm3' }], helper.location), 'refused cleanup');
    assert.match(error.message, /tapvm3 is not yours/);
    await within(DEADLINE, 'the connection closing', (await helper.connection()).ended);
  });
  await withFakeHelper((r) => ({ reply: nicsFor(r) }), async (helper) => {
    const error = await helperError(ovsCleanup([{ bridge: 'ovsbr0', tap: 'tapvm3' }], helper.location), 'cleanup answered with nics');
    assert.match(error.message, /removed/);
  });
});

test('a socket path with nothing there is an error naming the path', async () => {
  const error = await helperError(makeNics(nics('br0'), 'session', { kind: 'socket', path: '/nonexistent/xkvm/helper.sock', from: 'XKVM_HELPER_SOCKET' }), 'no socket');
  assert.match(error.message, /\/nonexistent\/xkvm\/helper\.sock/);
  assert.match(error.message, /no such socket/);
});

test('locateHelper: $XKVM_HELPER_SOCKET first, whatever else exists', () => {
  assert.equal(locateHelper({ XKVM_HELPER_SOCKET: '/tmp/h.sock' }, () => true), { kind: 'socket', path: '/tmp/h.sock', from: 'XKVM_HELPER_SOCKET' });
  assert.equal(locateHelper({ XKVM_HELPER_SOCKET: '/tmp/h.sock' }, () => false), { kind: 'socket', path: '/tmp/h.sock', from: 'XKVM_HELPER_SOCKET' });
});

test('locateHelper: then the installed socket, then pkexec with the installed helper', () => {
  assert.is(INSTALLED_SOCKET, '/run/xkvm/helper.sock');
  assert.equal(locateHelper({ XKVM_HELPER_SOCKET: '' }, () => true), { kind: 'socket', path: INSTALLED_SOCKET, from: 'installed' });
  assert.equal(locateHelper({}, (p) => p !== INSTALLED_SOCKET), { kind: 'pkexec', pkexec: PKEXEC, helper: INSTALLED_HELPER });
});

test('locateHelper: with no socket and no pkexec or no installed helper, it says to run `xkvm-helper install`', () => {
  for (const present of [[], [PKEXEC], [INSTALLED_HELPER]]) {
    const where = locateHelper({}, (p) => present.includes(p));
    assert.is(where.kind, 'none');
    assert.ok(where.kind === 'none' && where.why.includes('xkvm-helper install'), JSON.stringify(where));
  }
});

test('opening the "none" location fails with that message', async () => {
  const where = locateHelper({}, () => false);
  const error = await helperError(openConnection(where), 'open none');
  assert.match(error.message, /xkvm-helper install/);
});

test.run();
