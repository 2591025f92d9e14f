// makeNics with per-NIC options against a scripted stand-in helper (test/support/fake-helper.ts):
// what goes on the wire, the checks on the reply's queues and MACs, and the one retry after the
// helper's mac-lock refusal (shared/src/protocol/mac-lock.ts) with MACs the client chooses.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ClientError } from '../../../client/src/errors.js';
import { makeNics } from '../../../client/src/helper/session.js';
import { formatMacLockRefusal } from '../../../shared/src/protocol/mac-lock.js';
import type { NicRequest } from '../../../shared/src/protocol/messages.js';
import { errorReply, withFakeHelper, idOf, within, type ReceivedRequest, type Script } from '../../support/fake-helper.js';

const DEADLINE = 5000;
const CONF = '/etc/xkvm/helper.conf';

/** Decoded maps have a null prototype; compare them as plain data. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

/** The nics the helper's own validator read from a request. */
function asked(request: ReceivedRequest): NicRequest[] {
  assert.not.ok('invalid' in request.parsed, `the helper's validator refuses the request: ${JSON.stringify(request.parsed)}`);
  return (request.parsed as { nics: NicRequest[] }).nics;
}

/** A helper that makes what it is asked, answering queues and MACs as the real one does. */
function made(request: ReceivedRequest, change: (nic: Record<string, unknown>, i: number) => void = () => {}): object {
  const nics = asked(request).map((n, i) => {
    const nic: Record<string, unknown> = { bridge: n.bridge, tap: `tapvm${i}`, type: 'brctl', mtu: 1500 };
    if ((n.queues ?? 1) > 1) nic['queues'] = n.queues;
    change(nic, i);
    return nic;
  });
  return { v: 1, id: idOf(request), ok: true, nics };
}

async function refusedWith(promise: Promise<unknown>, what: string): Promise<ClientError> {
  const error = await within(DEADLINE, what, promise).then(() => undefined, (e: unknown) => e);
  assert.instance(error, ClientError, what);
  return error as ClientError;
}

test('per-NIC options go out as "nics" [{bridge, queues?, mac?}], exactly as given; without any, as "bridges" as before', async () => {
  await withFakeHelper((r) => ({ reply: made(r) }), async (helper) => {
    const nics = [{ bridge: 'br0', queues: 4 }, { bridge: 'br1', mac: '52:54:00:12:34:56' }, { bridge: 'br0' }];
    const session = await within(DEADLINE, 'makeNics', makeNics(nics, 'session', helper.location));
    session.connection.close();
    const value = helper.requests[0]!.value as Record<string, unknown>;
    assert.equal(Object.keys(value).sort(), ['id', 'lifetime', 'nics', 'op', 'v']);
    assert.equal(plain(value['nics']), nics);
    assert.equal(asked(helper.requests[0]!), nics);
    assert.equal(session.asked, nics);
    assert.is(session.nics[0]!.queues, 4);

    const again = await within(DEADLINE, 'makeNics', makeNics([{ bridge: 'br0' }], 'session', helper.location));
    again.connection.close();
    assert.equal(plain((helper.requests[1]!.value as Record<string, unknown>)['bridges']), ['br0']);
  });
});

test('a reply whose queues or locked MAC differ from what was asked is an error, and the connection is closed', async () => {
  const wrong: Array<[string, NicRequest[], (nic: Record<string, unknown>) => void, RegExp]> = [
    ['single-queue for 4', [{ bridge: 'br0', queues: 4 }], (n) => { delete n['queues']; }, /1 queues on br0, asked for 4/],
    ['8 queues for 4', [{ bridge: 'br0', queues: 4 }], (n) => { n['queues'] = 8; }, /8 queues on br0, asked for 4/],
    ['multi-queue unasked', [{ bridge: 'br0' }], (n) => { n['queues'] = 2; }, /2 queues on br0, asked for 1/],
    ['another MAC', [{ bridge: 'br0', mac: '52:54:00:00:00:01' }], (n) => { n['mac'] = '52:54:00:00:00:02'; }, /another MAC/],
  ];
  for (const [what, nics, change, message] of wrong) {
    await withFakeHelper((r) => ({ reply: made(r, change) }), async (helper) => {
      const error = await refusedWith(makeNics(nics, 'session', helper.location), what);
      assert.match(error.message, message, what);
      await within(DEADLINE, 'the connection closing', (await helper.connection()).ended);
    });
  }
});

test('on the mac-lock refusal, each nic it names gets a MAC from chooseMac, asked again once on the same connection; nics that had one keep it', async () => {
  const script: Script = (r, n) => n === 0
    ? { reply: errorReply(r, 'BAD_REQUEST', formatMacLockRefusal({ user: 'alice', missing: [{ index: 0, bridge: 'br0', rule: `${CONF}:3` }, { index: 2, bridge: 'br1', rule: `${CONF}:4` }] })) }
    : { reply: made(r, (nic, i) => {
      const mac = asked(r)[i]!.mac;
      if (mac !== undefined) nic['mac'] = mac;
    }) };
  await withFakeHelper(script, async (helper) => {
    const chosen: Array<[number, string]> = [];
    const session = await within(DEADLINE, 'makeNics', makeNics(
      [{ bridge: 'br0' }, { bridge: 'br1', mac: '52:54:00:12:34:56' }, { bridge: 'br1', queues: 2 }, { bridge: 'br2' }], 'session', helper.location,
      { chooseMac: (index, bridge) => { chosen.push([index, bridge]); return `52:54:00:00:00:0${index}`; } }));
    session.connection.close();
    assert.equal(chosen, [[0, 'br0'], [2, 'br1']]);
    assert.is(helper.requests.length, 2);
    assert.is(helper.connections.length, 1, 'one connection');
    const second = [{ bridge: 'br0', mac: '52:54:00:00:00:00' }, { bridge: 'br1', mac: '52:54:00:12:34:56' }, { bridge: 'br1', queues: 2, mac: '52:54:00:00:00:02' }, { bridge: 'br2' }];
    assert.equal(asked(helper.requests[1]!), second);
    assert.equal(session.asked, second);
    assert.is(session.nics.length, 4);
  });
});

test('the mac-lock refusal is the error when it comes twice, when no chooseMac is given, or when it does not match the request exactly', async () => {
  const lockOn0 = formatMacLockRefusal({ user: 'alice', missing: [{ index: 0, bridge: 'br0', rule: `${CONF}:3` }] });
  const cases: Array<[string, NicRequest[], string, boolean, number]> = [
    ['refused again', [{ bridge: 'br0' }], lockOn0, true, 2],
    ['no chooseMac (tap-control)', [{ bridge: 'br0' }], lockOn0, false, 1],
    ['names a nic that has a MAC', [{ bridge: 'br0', mac: '52:54:00:12:34:56' }], lockOn0, true, 1],
    ['names another bridge', [{ bridge: 'br1' }], lockOn0, true, 1],
    ['another code', [{ bridge: 'br0' }], lockOn0, true, 1],
  ];
  for (const [what, nics, message, choose, requests] of cases) {
    const code = what === 'another code' ? 'DENIED' : 'BAD_REQUEST';
    await withFakeHelper((r) => ({ reply: errorReply(r, code, message) }), async (helper) => {
      let calls = 0;
      const options = choose ? { chooseMac: () => { calls++; return '52:54:00:00:00:01'; } } : {};
      const error = await refusedWith(makeNics(nics, 'session', helper.location, options), what);
      assert.is(error.code, 'HELPER');
      assert.ok(error.message.includes(message), `${what}: the helper's words reach the user: ${error.message}`);
      assert.is(helper.requests.length, requests, what);
      assert.is(calls, requests - 1, what);
      await within(DEADLINE, 'the connection closing', (await helper.connection()).ended);
    });
  }
});

test.run();
