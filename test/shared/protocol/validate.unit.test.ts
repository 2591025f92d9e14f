// Request validation (shared/src/protocol/validate.ts) on the tables the real-helper validation
// suite sends over a socket (test/helper/server/cases.ts), put through decodeMessage and
// parseRequest directly: each decodes as a map and is refused with the same code, the request's id
// when it is readable, and a sentence naming what is wrong. Bodies come from the hand-rolled
// encoder of test/helper/server/support.ts, not the wire's own.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { decodeMessage } from '../../../shared/src/protocol/decode.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import type { Request } from '../../../shared/src/protocol/messages.js';
import { parseReply, parseRequest } from '../../../shared/src/protocol/validate.js';
import { badNames, badRequests, nameUses, quotedInReplies } from '../../helper/server/cases.js';
import { assertSentence, mp, Raw, type MpValue } from '../../helper/server/support.js';

const ID = 4242;

function parse(value: MpValue): Request {
  return parseRequest(decodeMessage(mp(value)));
}

/** Why parseRequest refuses `value` (fails the test if it is accepted or something else is thrown). */
function refusal(value: MpValue): ProtocolError {
  const decoded = decodeMessage(mp(value));
  try {
    parseRequest(decoded);
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  throw new Error(`expected a refusal, the request was accepted: ${JSON.stringify(decoded)}`);
}

for (const c of badRequests) {
  const codes = typeof c.code === 'string' ? [c.code] : c.code;
  test(`${c.what} is refused with ${codes.join('/')}${c.idReadable ? ' carrying its id' : ' without an id'}`, () => {
    const error = refusal(c.build(ID));
    assert.ok(codes.includes(error.code), `code ${error.code} (${error.message}), expected ${codes.join(' or ')}`);
    assert.is(error.id, c.idReadable ? ID : undefined);
    if (c.mentions !== undefined) assert.match(error.message, c.mentions);
    assertSentence(error.message, c.what);
  });
}

for (const [what, name] of badNames) {
  test(`an interface name ${what} is refused with BAD_NAME, carrying the id, as a bridge, a port's bridge and a port's tap`, () => {
    for (const use of nameUses) {
      const error = refusal(use.build(ID, name));
      assert.is(error.code, 'BAD_NAME', `${use.field.source}: ${error.message}`);
      assert.is(error.id, ID);
      assert.match(error.message, use.field);
      assertSentence(error.message, `${what}, ${use.field.source}`);
    }
  });
}

for (const c of quotedInReplies) {
  test(`${c.what}: the refusal quotes it without control characters and at a bounded length`, () => {
    const error = refusal(c.build(ID));
    assert.is(error.code, c.code);
    assertSentence(error.message, c.what);
  });
}

// What the tables refuse, just inside the limits: each must be accepted, exactly as sent.
test('a make-nics request is read as exactly its fields, with lifetime only when sent; bridges become nics', () => {
  assert.equal(parse({ v: 1, id: 7, op: 'make-nics', bridges: ['br0', 'br1'] }), { v: 1, id: 7, op: 'make-nics', nics: [{ bridge: 'br0' }, { bridge: 'br1' }] });
  assert.equal(parse({ v: 1, id: 7, op: 'make-nics', bridges: ['br0'], lifetime: 'persistent' }),
    { v: 1, id: 7, op: 'make-nics', nics: [{ bridge: 'br0' }], lifetime: 'persistent' });
});

test('nics carry queues and a MAC only when sent, the MAC in lowercase; handoff is read when sent, and fd with a lifetime is refused', () => {
  assert.equal(parse({
    v: 1, id: 7, op: 'make-nics', lifetime: 'session', handoff: 'name',
    nics: [{ bridge: 'br0' }, { bridge: 'br1', queues: 1 }, { bridge: 'br0', queues: 16, mac: '52:54:00:AB:cd:0F' }],
  }), {
    v: 1, id: 7, op: 'make-nics', lifetime: 'session', handoff: 'name',
    nics: [{ bridge: 'br0' }, { bridge: 'br1', queues: 1 }, { bridge: 'br0', queues: 16, mac: '52:54:00:ab:cd:0f' }],
  });
  assert.equal(parse({ v: 1, id: 7, op: 'make-nics', nics: [{ bridge: 'br0', mac: 'fe:ff:ff:ff:ff:ff' }], handoff: 'fd' }),
    { v: 1, id: 7, op: 'make-nics', nics: [{ bridge: 'br0', mac: 'fe:ff:ff:ff:ff:ff' }], handoff: 'fd' }, 'locally administered unicast, and fd');
  for (const lifetime of ['session', 'persistent']) {
    assert.throws(() => parse({ v: 1, id: 7, op: 'make-nics', bridges: ['br0'], handoff: 'fd', lifetime }), /"lifetime" does not apply to handoff "fd"/, lifetime);
  }
});

test('a reply\'s nics may carry mtu, queues, vlan and mac; each is checked, and only what is sent is read', () => {
  const reply = (nic: Record<string, MpValue>): MpValue => ({ v: 1, id: 3, ok: true, nics: [{ bridge: 'br0', tap: 'xkvm0', type: 'brctl', ...nic }] });
  assert.equal(parseReply(decodeMessage(mp(reply({})))), { v: 1, id: 3, ok: true, nics: [{ bridge: 'br0', tap: 'xkvm0', type: 'brctl' }] });
  assert.equal(parseReply(decodeMessage(mp(reply({ mtu: 9000, queues: 4, vlan: 4094, mac: '52:54:00:12:34:56' })))),
    { v: 1, id: 3, ok: true, nics: [{ bridge: 'br0', tap: 'xkvm0', type: 'brctl', mtu: 9000, queues: 4, vlan: 4094, mac: '52:54:00:12:34:56' }] });
  for (const bad of [{ mtu: 0 }, { mtu: 65536 }, { mtu: '1500' }, { queues: 0 }, { queues: 17 }, { vlan: 0 }, { vlan: 4095 }, { vlan: 1.5 },
    { mac: '01:00:5e:00:00:01' }, { mac: '52:54:00:12:34' }, { mac: null }]) {
    assert.throws(() => parseReply(decodeMessage(mp(reply(bad)))), /malformed reply/, JSON.stringify(bad));
  }
});

test('an ovs-cleanup request is read as exactly its ports', () => {
  assert.equal(parse({ v: 1, id: 8, op: 'ovs-cleanup', ports: [{ bridge: 'ovsbr0', tap: 'xkvm1a2b3c' }] }),
    { v: 1, id: 8, op: 'ovs-cleanup', ports: [{ bridge: 'ovsbr0', tap: 'xkvm1a2b3c' }] });
});

test('ids 0 and 2^32-1 are accepted, whatever integer width carries them', () => {
  const u64 = (n: number): Raw => new Raw(Buffer.from([0xcf, 0, 0, 0, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]));
  for (const id of [0, 0xffff_ffff]) {
    assert.is(parse({ v: 1, id, op: 'make-nics', bridges: ['br0'] }).id, id);
    assert.is(parse({ v: 1, id: u64(id), op: 'make-nics', bridges: ['br0'] }).id, id);
  }
});

test('64 bridges or nics and names of 15 bytes are accepted', () => {
  const bridges = Array.from({ length: 64 }, (_, i) => `br${i}`);
  const nics = bridges.map((bridge) => ({ bridge }));
  assert.equal(parse({ v: 1, id: 9, op: 'make-nics', bridges }), { v: 1, id: 9, op: 'make-nics', nics });
  assert.equal(parse({ v: 1, id: 9, op: 'make-nics', nics }), { v: 1, id: 9, op: 'make-nics', nics });
  assert.equal(parse({ v: 1, id: 9, op: 'make-nics', bridges: ['abcdefghijklmno'] }), { v: 1, id: 9, op: 'make-nics', nics: [{ bridge: 'abcdefghijklmno' }] });
});

test('a make-nics reply keeps each nic\'s mtu, and one that is no MTU a tap can have is a malformed reply', () => {
  const reply = (mtu: MpValue): unknown => parseReply(decodeMessage(mp({ v: 1, id: ID, ok: true, nics: [{ bridge: 'br0', tap: 'xkvmabcdefgh', type: 'brctl', mtu }] })));
  assert.equal(reply(9000), { v: 1, id: ID, ok: true, nics: [{ bridge: 'br0', tap: 'xkvmabcdefgh', type: 'brctl', mtu: 9000 }] });
  assert.equal(reply(68), { v: 1, id: ID, ok: true, nics: [{ bridge: 'br0', tap: 'xkvmabcdefgh', type: 'brctl', mtu: 68 }] });
  for (const bad of [0, 67, 65536, 1500.5, '1500', null]) {
    assert.throws(() => reply(bad), (e: unknown) => e instanceof ProtocolError && /malformed reply: .*"mtu"/.test(e.message), JSON.stringify(bad));
  }
  // a helper without MTUs (older) is still understood
  assert.equal(parseReply(decodeMessage(mp({ v: 1, id: ID, ok: true, nics: [{ bridge: 'br0', tap: 'xkvmabcdefgh', type: 'ovs' }] }))),
    { v: 1, id: ID, ok: true, nics: [{ bridge: 'br0', tap: 'xkvmabcdefgh', type: 'ovs' }] });
});

test.run();
