/**
 * Fd handoff over pkexec (issue 11), for real: an ordinary user runs the real pkexec (real
 * polkitd, test/support/private-pkexec.ts) and the helper serves them on stdin/stdout. Given one
 * end of a socketpair as both (what xkvm passes), the helper sends the tap's fd with its reply; on
 * pipes it refuses fd handoff with BAD_REQUEST saying why, and makes nothing. The client is not
 * the project's own (Python's recvmsg, test/support/fd-client.py).
 */
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createNetns, createTestUser, removeTestUser, sweepStaleNetns, type Netns, type TestUser } from '../../support/netns.js';
import { startPolkit, type Polkit } from '../../support/polkit.js';
import { privatePkexec, type PrivatePkexec } from '../../support/private-pkexec.js';
import { frame, pyClientHere, replyOf } from '../../support/fd-client.js';
import { waitFor } from '../../support/wait.js';

let ns: Netns;
let user: TestUser;
let polkit: Polkit | undefined;
let pk: PrivatePkexec | undefined;

test.before(async () => {
  if (process.geteuid?.() !== 0) throw new Error('this suite must run as root: it runs pkexec, polkitd and the helper for an ordinary user');
  sweepStaleNetns();
  user = createTestUser('pf');
  ns = createNetns({ bridges: ['br0'] });
  polkit = await startPolkit();
  pk = await privatePkexec(ns, user, [`allow br0 ${user.name}`]);
});

test.after(async () => {
  pk?.remove();
  await polkit?.stop();
  ns?.destroy();
  if (user !== undefined) removeTestUser(user);
});

function taps(): { ifname: string; master?: string }[] {
  return (JSON.parse(ns.ip('-j', 'link', 'show', 'type', 'tun')) as { ifname: string; master?: string }[]);
}

test('a user\'s pkexec\'d helper on pipes refuses fd handoff with BAD_REQUEST saying it needs a Unix socket, and makes nothing', async () => {
  const client = pyClientHere({
    spawn: pk!.command({ jobControl: false, journal: '/dev/null' }), via: 'pipes', hangUp: true,
    requests: [frame({ v: 1, id: 1, op: 'make-nics', bridges: ['br0'], handoff: 'fd' })],
  });
  try {
    const reply = replyOf((await client.report()).replies[0]?.frame ?? '');
    assert.is(reply.ok ? 'ok' : reply.error.code, 'BAD_REQUEST');
    assert.match(reply.ok ? '' : reply.error.message, /fd handoff needs a Unix socket as stdin\/stdout; xkvm passes one end of a socketpair/);
    assert.equal(taps(), []);
  } finally {
    await client.end();
  }
});

test('a user\'s pkexec\'d helper on a socketpair sends the tap\'s fd with the reply; the tap, attached and the user\'s, dies with the fd', async () => {
  const client = pyClientHere({
    spawn: pk!.command({ jobControl: false, journal: '/dev/null' }), via: 'socketpair', hold: true, hangUp: true,
    requests: [frame({ v: 1, id: 2, op: 'make-nics', nics: [{ bridge: 'br0', queues: 2 }], handoff: 'fd' })],
  });
  try {
    const report = await client.report();
    const reply = replyOf(report.replies[0]?.frame ?? '');
    assert.ok(reply.ok && 'nics' in reply, JSON.stringify(reply));
    const tap = reply.ok && 'nics' in reply ? reply.nics[0]?.tap : undefined;
    assert.equal(report.replies[0]?.fds.map((f) => [f.at, f.iff]), [[0, tap], [0, tap]], 'two queues, two fds, on the first byte');
    assert.equal(taps().map((t) => [t.ifname, t.master]), [[tap, 'br0']]);
    const owner = ns.exec(['/usr/bin/cat', `/sys/class/net/${tap}/owner`]).stdout.trim();
    assert.is(owner, String(user.uid), 'owned by the user pkexec named');
    // The helper's session ended with its stdin (hangUp) and it exited: the tap is the fd's.
    await client.closeFds();
    await waitFor(() => taps().length === 0, 2000, { what: 'the tap to be gone once its fd is closed', describe: () => JSON.stringify(taps()) });
  } finally {
    await client.end();
  }
});

test.run();
