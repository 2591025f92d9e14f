import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ClientError } from '../../../client/src/errors.js';
import { padMac, randomMac } from '../../../client/src/net/mac.js';

function badMac(partial: string, index = 0): ClientError {
  let caught: unknown;
  try {
    padMac(partial, index);
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, ClientError, `'${partial}' was accepted`);
  assert.is((caught as ClientError).code, 'BAD_MAC');
  return caught as ClientError;
}

test('the prefix is qemu\'s locally administered 52:54:00:12:34', () => {
  assert.is(padMac(':ff', 0), '52:54:00:12:34:ff');
  assert.is(padMac('ff:ff:ff:ff:ff', 0), '52:ff:ff:ff:ff:ff');
});

test('":05" is the last octet: 52:54:00:12:34:05', () => {
  assert.is(padMac(':05', 0), '52:54:00:12:34:05');
  assert.is(padMac('05', 7), '52:54:00:12:34:05');
});

test('three octets replace the last three: "12:34:56" gives 52:54:00:12:34:56', () => {
  assert.is(padMac('12:34:56', 0), '52:54:00:12:34:56');
  assert.is(padMac('ab:cd', 0), '52:54:00:12:ab:cd');
});

test('an empty MAC is the netdev index as the last octet', () => {
  assert.is(padMac('', 3), '52:54:00:12:34:03');
  assert.is(padMac('', 0), '52:54:00:12:34:00');
  assert.is(padMac('', 26), '52:54:00:12:34:1a');
});

test('uppercase hex comes out lowercase and single digits are padded', () => {
  assert.is(padMac('AB:C', 0), '52:54:00:12:ab:0c');
  assert.is(padMac('DE:AD:BE:EF:00:01', 0), 'de:ad:be:ef:00:01');
});

test('a full MAC is kept as it is', () => {
  assert.is(padMac('02:00:00:aa:bb:cc', 5), '02:00:00:aa:bb:cc');
});

test('empty pieces between colons vanish as in the reference ("::05" is "05")', () => {
  assert.is(padMac('::05', 0), '52:54:00:12:34:05');
});

test('non-hex, more than six octets and three-digit octets are refused with a message saying what a MAC may be', () => {
  for (const bad of ['zz', '12:34:56:78:9a:bc:de', '123', '1g', ':', 'random-ish']) {
    const error = badMac(bad);
    assert.ok(error.message.includes(`'${bad}'`), error.message);
    assert.match(error.message, /hex octets/);
  }
});

test('randomMac keeps 52:54:00 and draws the last three octets from the random source', () => {
  const asked: number[] = [];
  const mac = randomMac((n) => {
    asked.push(n);
    return Buffer.from([0xab, 0x01, 0xff]);
  });
  assert.is(mac, '52:54:00:ab:01:ff');
  assert.equal(asked, [3]);
});

test('randomMac with the default source gives a well-formed 52:54:00 address', () => {
  assert.match(randomMac(), /^52:54:00(:[0-9a-f]{2}){3}$/);
});

test.run();
