// `xkvm tap-control make-nics` with per-NIC options (BRIDGE[,queues=N][,mac=MAC]): the built
// client run as a script would run it, against a scripted stand-in helper on
// $XKVM_HELPER_SOCKET. What reaches the helper, what is printed (the reference's TAP:TYPE lines),
// and every bad operand refused before the helper is asked. With a real helper:
// test/helper/lifecycle/persistent.test.ts.
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/reference.js';
import { idOf, nicsFor, withFakeHelper, within, type FakeHelper, type ReceivedRequest } from '../support/fake-helper.js';

const CLIENT_BIN = join(REPO_ROOT, 'dist', 'bin', 'xkvm.cjs');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function tapControl(helper: FakeHelper, args: string[]): Promise<Result> {
  return within(10_000, `xkvm tap-control ${args.join(' ')}`, new Promise((resolve) => {
    execFile(process.execPath, [CLIENT_BIN, 'tap-control', ...args], { env: { ...process.env, XKVM_HELPER_SOCKET: helper.path } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  }));
}

/** Decoded maps have a null prototype; compare them as plain data. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));
const sent = (r: ReceivedRequest): Record<string, unknown> => plain(r.value) as Record<string, unknown>;

/** The stand-in's answer: tapvm0, tapvm1, ... with the queues asked for, as the helper answers. */
function made(r: ReceivedRequest): object {
  const reply = nicsFor(r) as { nics: Array<Record<string, unknown>> };
  const nics = (r.parsed as { nics: Array<{ queues?: number }> }).nics;
  reply.nics.forEach((n, i) => {
    const queues = nics[i]?.queues ?? 1;
    if (queues > 1) n['queues'] = queues;
  });
  return { ...reply, id: idOf(r) };
}

test('make-nics BRIDGE,queues=N,mac=MAC asks for those nics (persistent) and prints TAP:TYPE and skip lines as the reference does', async () => {
  await withFakeHelper((r) => ({ reply: made(r) }), async (helper) => {
    const r = await tapControl(helper, ['make-nics', 'br0,queues=4,mac=52:54:00:AB:cd:56', 'user', 'br1', 'br0,mac=52:54:00:12:34:57']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'tapvm0:brctl\nskip\ntapvm1:brctl\ntapvm2:brctl\n');
    assert.is(r.stderr, '');
    assert.is(helper.requests.length, 1);
    const request = sent(helper.requests[0]!);
    assert.is(request['lifetime'], 'persistent');
    assert.equal(request['nics'], [{ bridge: 'br0', queues: 4, mac: '52:54:00:ab:cd:56' }, { bridge: 'br1' }, { bridge: 'br0', mac: '52:54:00:12:34:57' }]);
    assert.not.ok('invalid' in helper.requests[0]!.parsed, 'the helper\'s validator takes it');
  });
});

test('make-nics with bare bridges still sends "bridges", as before per-NIC options', async () => {
  await withFakeHelper((r) => ({ reply: made(r) }), async (helper) => {
    const r = await tapControl(helper, ['make-nics', 'br0', 'br1']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'tapvm0:brctl\ntapvm1:brctl\n');
    assert.equal(sent(helper.requests[0]!)['bridges'], ['br0', 'br1']);
  });
});

test('a bad NIC operand is refused with what is wrong and what is allowed, before the helper is asked for anything', async () => {
  const bad: Array<[string, RegExp]> = [
    ['br0,vlan=10', /'br0,vlan=10': unknown option 'vlan' \(a NIC is BRIDGE\[,queues=N\]\[,mac=MAC\]\)/],
    ['br0,mq', /unknown option 'mq'/],
    ['br0,', /'br0,': unknown option '' /],
    ['br0,queues=0', /queues= must be a whole number from 1 to 16, got '0'/],
    ['br0,queues=17', /queues= must be a whole number from 1 to 16, got '17'/],
    ['br0,queues=four', /queues= must be a whole number from 1 to 16, got 'four'/],
    ['br0,queues=', /queues= needs a value/],
    ['br0,queues=2,queues=2', /queues= given twice/],
    ['br0,mac=52:54:00:12:34', /mac= must be the guest's unicast MAC: "52:54:00:12:34" is not six hex pairs/],
    ['br0,mac=01:00:5e:00:00:01', /mac= must be the guest's unicast MAC: 01:00:5e:00:00:01 is a multicast address/],
    ['br0,mac=00:00:00:00:00:00', /mac= must be the guest's unicast MAC: it is all zero/],
    ['br0,mac=:05', /not six hex pairs/],
    ['user,queues=2', /'user,queues=2': user networking takes no options/],
    ['br/0,queues=2', /bridge 'br\/0' is not an interface name/],
  ];
  await withFakeHelper((r) => ({ reply: made(r) }), async (helper) => {
    for (const [operand, message] of bad) {
      const r = await tapControl(helper, ['make-nics', 'br1', operand]);
      assert.is.not(r.code, 0, operand);
      assert.match(r.stderr, message, operand);
      assert.is(r.stdout, '', operand);
    }
    assert.is(helper.requests.length, 0, 'the helper was asked nothing');
  });
});

test('make-nics --help documents the per-NIC syntax', async () => {
  await withFakeHelper((r) => ({ reply: made(r) }), async (helper) => {
    const r = await tapControl(helper, ['make-nics', '--help']);
    assert.is(r.code, 0);
    assert.match(r.stdout, "NIC is 'user' or BRIDGE[,queues=N][,mac=MAC], e.g. br0,queues=4,mac=52:54:00:12:34:56");
  });
});

test.run();
