/**
 * Issue 9, item 5: a helper started by pkexec sits in its caller's terminal session, in the
 * foreground job, so a ^Z typed there stopped it (holding its quota lock, so that tap creation
 * failed for everyone); a hangup killed it with its session's taps in place. Now it leaves the
 * terminal's job control: its own session (setsid), or, when it leads a process group (pkexec
 * typed as a job of an interactive shell), a helper started again in a session of its own while
 * it waits in the job, ignoring ^Z and passing a hangup on as the end of the session.
 * And item 10: such a helper's audit records reach the system journal, not only the caller.
 *
 * Replayed for real: a real terminal (a pty, test/support/terminal.ts), the real pkexec and
 * polkitd, the real helper, an ordinary user; the helper's state, policy and journal socket are
 * private to each run (test/support/private-pkexec.ts), the journal being a datagram socket of
 * this test bound at /run/systemd/journal/socket.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { decodeMessage, encodeBody } from '../../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';
import { listenDatagrams, parseJournal, type DatagramListener } from '../../support/datagram-listener.js';
import { createNetns, createTestUser, removeTestUser, sweepStaleNetns, type Netns, type TestUser } from '../../support/netns.js';
import { startPolkit, type Polkit } from '../../support/polkit.js';
import { privatePkexec, type PrivatePkexec } from '../../support/private-pkexec.js';
import { descendants, isRunning, procStat, procUid, signal, type ProcStat } from '../../support/procs.js';
import { present } from '../../support/taps.js';
import { inTerminal, type InTerminal } from '../../support/terminal.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';

let ns: Netns;
let user: TestUser;
let polkit: Polkit | undefined;
let pk: PrivatePkexec | undefined;
let dir = '';

test.before(async () => {
  if (process.geteuid?.() !== 0) throw new Error('this suite must run as root: it runs pkexec, polkitd and the helper for an ordinary user');
  sweepStaleNetns();
  user = createTestUser('p');
  ns = createNetns({ bridges: ['br0'] });
  dir = mkdtempSync('/tmp/xkvmjc-');
  polkit = await startPolkit();
  pk = await privatePkexec(ns, user, [`allow br0 ${user.name}`]);
});

test.after(async () => {
  pk?.remove();
  await polkit?.stop();
  ns?.destroy();
  if (user !== undefined) removeTestUser(user);
  rmSync(dir, { recursive: true, force: true });
});

/** Frames to and from the helper over the command's stdin and stdout. */
function wire(t: InTerminal): { send(request: object): void; reply(id: number, deadlineMs: number): Promise<Record<string, unknown>> } {
  const decoder = new FrameDecoder();
  const replies: Array<Record<string, unknown>> = [];
  let stderr = '';
  t.child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  t.child.stdout?.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) replies.push(JSON.parse(JSON.stringify(decodeMessage(frame))) as Record<string, unknown>);
  });
  t.child.stdin?.on('error', () => undefined);
  return {
    send: (request) => t.child.stdin?.write(encodeFrame(encodeBody(request))),
    reply: async (id, deadlineMs) => (await waitFor(() => replies.find((r) => r['id'] === id), deadlineMs,
      { what: `the helper's reply to request ${id}`, describe: () => `replies ${JSON.stringify(replies)}; stderr ${stderr.slice(-1500)}` })).value,
  };
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter((a) => a !== '');
  } catch {
    return [];
  }
}

/** The root process below `t` running `script` (the launcher pkexec ran, or the helper's main). */
function rootProcess(t: InTerminal, script: string): ProcStat | undefined {
  return descendants(t.pid).find((p) => procUid(p.pid) === 0 && cmdline(p.pid)[1] === script);
}

const HELPER_MAIN_SUFFIX = '/helper/src/main.js';

async function madeTap(w: ReturnType<typeof wire>, id: number): Promise<string> {
  w.send({ v: 1, id, op: 'make-nics', bridges: ['br0'], lifetime: 'session' });
  const reply = await w.reply(id, PATIENCE_MS);
  assert.is(reply['ok'], true, JSON.stringify(reply));
  const [nic] = reply['nics'] as Array<{ tap: string }>;
  assert.ok(nic !== undefined);
  return nic.tap;
}

/** Stops what the run left (some of it stopped by ^Z), without hiding the test's own failure. */
function end(t: InTerminal, journal: DatagramListener): void {
  for (const p of descendants(t.pid).reverse()) signal(p.pid, 'SIGKILL');
  t.child.kill('SIGKILL');
  journal.close();
}

test('pkexec run by a client in its terminal\'s foreground job, as xkvm runs it: a ^Z typed there stops the job but not the helper, which left the terminal\'s session and serves the next request; its records reach the journal', async () => {
  const journal = await listenDatagrams(join(dir, 'j1.sock'));
  const t = inTerminal(pk!.command({ jobControl: false, journal: journal.path }));
  try {
    const w = wire(t);
    const first = await madeTap(w, 1);
    const helper = rootProcess(t, pk!.launcher);
    assert.ok(helper !== undefined, 'the helper pkexec ran');
    const shell = descendants(t.pid).find((p) => procUid(p.pid) === user.uid && p.comm === 'sh');
    assert.ok(shell !== undefined, 'the user\'s shell, pkexec\'s parent');

    t.typeSuspend();
    await waitFor(() => procStat(shell.pid)?.state === 'T', PATIENCE_MS, { what: 'the user\'s shell, in the terminal\'s foreground job, to be stopped by the ^Z' });
    const second = await madeTap(w, 2);
    assert.is.not(procStat(helper.pid)?.state, 'T', 'the helper is not stopped');
    for (const child of descendants(helper.pid)) assert.is.not(child.state, 'T', `its child ${child.comm} is not stopped`);
    assert.equal(present(ns, [first, second]), [first, second]);

    const stat = procStat(helper.pid)!;
    assert.is(stat.session, helper.pid, 'the helper leads a session of its own');
    assert.is(stat.tpgid, -1, 'and has no controlling terminal');

    // Item 10: the records are in the journal, with the fields admins search by.
    const entry = parseJournal(await journal.next((d) => d.includes(second), PATIENCE_MS, `the journal entry for ${second}`));
    assert.equal(entry.get('XKVM_EVENT'), ['request']);
    assert.equal(entry.get('XKVM_UID'), [String(user.uid)]);
    assert.equal(entry.get('XKVM_USER'), [user.name]);
    assert.equal(entry.get('XKVM_RESULT'), ['ok']);
    assert.equal(entry.get('SYSLOG_IDENTIFIER'), ['xkvm-helper']);
    const message = JSON.parse(entry.get('XKVM_RECORD')![0]!) as { caller: { transport: string }; taps: Array<{ tap: string }> };
    assert.is(message.caller.transport, 'pkexec');
    assert.is(message.taps[0]?.tap, second);

    // The client's end (its stdin closes) still ends the session.
    t.child.stdin?.end();
    await waitFor(() => present(ns, [first, second]).length === 0, PATIENCE_MS, { what: 'the session\'s taps to be removed when the client ends' });
    await journal.next((d) => parseJournal(d).get('XKVM_EVENT')?.[0] === 'session-end' && d.includes(second), PATIENCE_MS, 'the session-end entry');
  } finally {
    end(t, journal);
  }
});

test('pkexec typed as a job of an interactive shell leads its process group (no setsid): a ^Z to that job stops neither it nor the helper it started in a session of its own, which serves on; a hangup of the terminal ends the session and removes its taps', async () => {
  const journal = await listenDatagrams(join(dir, 'j2.sock'));
  const t = inTerminal(pk!.command({ jobControl: true, journal: journal.path }));
  try {
    const w = wire(t);
    const first = await madeTap(w, 1);
    const leader = rootProcess(t, pk!.launcher);
    assert.ok(leader !== undefined, 'the helper pkexec ran');
    const sleeper = descendants(t.pid).find((p) => p.comm === 'sleep');
    assert.ok(sleeper !== undefined, 'the sleep in the same job');
    assert.is(leader.pgrp, leader.pid, 'pkexec leads the job\'s process group');
    assert.is(sleeper.pgrp, leader.pid);
    assert.is(procStat(leader.pid)?.tpgid, leader.pid, 'the job is the terminal\'s foreground job');

    t.typeSuspend();
    // The sleep stops. (Had the whole job stopped, its shell would have given up on it, and the
    // kernel would have hung the orphaned job up: the sleep would be gone.)
    await waitFor(() => ['T', 'Z', undefined].includes(procStat(sleeper.pid)?.state), PATIENCE_MS, { what: 'the job (its sleep) to get the ^Z' });
    const second = await madeTap(w, 2);
    assert.ok(isRunning(leader.pid), 'the helper pkexec ran still runs');
    assert.is.not(procStat(leader.pid)?.state, 'T', 'the helper pkexec ran is not stopped');
    assert.is(procStat(sleeper.pid)?.state, 'T', 'the ^Z stopped the rest of the job');
    const serving = descendants(leader.pid).find((p) => procUid(p.pid) === 0 && (cmdline(p.pid)[1] ?? '').endsWith(HELPER_MAIN_SUFFIX));
    assert.ok(serving !== undefined, 'the helper serving, started by the one pkexec ran');
    assert.is(procStat(serving.pid)?.session, serving.pid, 'it leads a session of its own');
    for (const p of [serving, ...descendants(serving.pid)]) assert.is.not(procStat(p.pid)?.state, 'T', `${p.comm} is not stopped`);

    // The terminal goes away: its session leader ends, and the kernel sends SIGHUP to the job.
    t.hangUp();
    await waitFor(() => present(ns, [first, second]).length === 0, PATIENCE_MS,
      { what: 'the session\'s taps to be removed after the hangup', describe: () => `taps ${present(ns, [first, second]).join(',')}` });
    await waitFor(() => !isRunning(serving.pid) && !isRunning(leader.pid), PATIENCE_MS, { what: 'both helpers to exit' });
    const ended = parseJournal(await journal.next((d) => d.includes('XKVM_EVENT=session-end'), PATIENCE_MS, 'the session-end entry'));
    assert.equal(ended.get('XKVM_RESULT'), ['ok']);
    assert.ok(journal.received.some((d) => d.includes('"signal":"SIGHUP"')), 'the hangup is on record');
  } finally {
    end(t, journal);
  }
});

test.run();
