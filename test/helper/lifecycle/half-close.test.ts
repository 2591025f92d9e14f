/**
 * A client that sends a request and then closes its sending side (stdin at EOF under pkexec,
 * shutdown(SHUT_WR) on the socket: `printf FRAME | pkexec xkvm-helper --stdio` in a script) still
 * gets the reply to that request. Otherwise a persistent make-nics creates a tap that its caller
 * never hears the name of, while the audit log says "ok".
 */
import { connect } from 'node:net';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { decodeMessage, encodeBody } from '../../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';
import { createNetns, type Netns } from '../../support/netns.js';
import { HELPER_MAIN, makeScratch, startSocketHelper, stop, watch, type Scratch, type Watched } from '../../support/helper-proc.js';
import { helperTaps } from '../../support/taps.js';
import { within } from '../../support/wait.js';
import { requireRoot } from './support.js';

let ns: Netns;
let scratch: Scratch;
let config: string;

test.before(() => {
  requireRoot();
  ns = createNetns({ bridges: ['br0'] });
  scratch = makeScratch('hc');
  config = scratch.policy(['allow br0 root']);
});

test.after(() => {
  ns?.destroy();
  scratch?.remove();
});

// before.each: uvu skips after.each hooks when a test fails.
test.before.each(() => {
  for (const d of helperTaps(ns)) ns.ip('link', 'del', d.name);
});

const REQUEST = { v: 1, id: 42, op: 'make-nics', bridges: ['br0'], lifetime: 'persistent' };

function replies(bytes: Buffer): unknown[] {
  // Plain objects (decodeMessage makes null-prototype maps), for deep equality.
  return new FrameDecoder().push(bytes).map((b) => JSON.parse(JSON.stringify(decodeMessage(b))) as unknown);
}

test('a stdio helper whose stdin ends right after a request still sends the reply, naming the persistent tap it made', async () => {
  const child = ns.spawn([process.execPath, HELPER_MAIN, '--stdio', '--config', config, '--state-dir', scratch.state],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  const helper = watch(child, { binaryStdout: true });
  const out: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stdin!.end(encodeFrame(encodeBody(REQUEST)));
  const exit = await within(helper.exited, 15_000, 'the stdio helper to exit');
  assert.is(exit.code, 0, helper.stderr());
  const taps = helperTaps(ns).map((d) => d.name);
  assert.is(taps.length, 1, 'the persistent tap was made');
  const got = replies(Buffer.concat(out));
  assert.equal(got, [{ v: 1, id: 42, ok: true, nics: [{ bridge: 'br0', tap: taps[0], type: 'brctl', mtu: 1500 }] }],
    `the reply to the request (audit: ${JSON.stringify(helper.audits.filter((a) => a.event === 'request'))})`);
});

test('on the socket, a client that half-closes right after a request still gets the reply', async () => {
  let helper: Watched | undefined;
  try {
    helper = await startSocketHelper(ns, { config, stateDir: scratch.state, socket: scratch.socket });
    const socket = connect({ path: scratch.socket, allowHalfOpen: true });
    const out: Buffer[] = [];
    socket.on('data', (b: Buffer) => out.push(b));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    socket.end(encodeFrame(encodeBody(REQUEST)));
    await within(closed, 15_000, 'the helper to close the connection');
    const audit = await helper.audit((a) => a.event === 'request', 10_000, 'the request\'s audit record');
    const taps = helperTaps(ns).map((d) => d.name);
    assert.is(audit['result'], 'ok', JSON.stringify(audit));
    assert.is(taps.length, 1, 'the persistent tap was made');
    assert.equal(replies(Buffer.concat(out)), [{ v: 1, id: 42, ok: true, nics: [{ bridge: 'br0', tap: taps[0], type: 'brctl', mtu: 1500 }] }]);
  } finally {
    if (helper !== undefined) await stop(helper);
  }
});

test.run();
