/**
 * Under pkexec, the caller controls the helper's arguments and environment (pkexec checks
 * neither beyond exec.argv1): every argument but `--stdio` must be refused, whether polkit or the
 * helper refuses it, and environment variables the member sets (NODE_OPTIONS) must not reach the
 * helper. Real install, real polkitd, real pkexec, as root orchestrating an ordinary member.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { ACTION_ID } from '../../helper/src/install/action.js';
import { decodeMessage, encodeBody } from '../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../shared/src/protocol/frame.js';
import { createNetns, sweepStaleNetns, type Netns, type TestUser } from '../support/netns.js';
import { openPkexecSession } from '../support/pkexec-session.js';
import { actionKnown, PKEXEC, startPolkit, type Polkit } from '../support/polkit.js';
import {
  groupWithMember, helperCli, PATHS, refuseIfInstalled, requireRoot, savePolicy, tearDown, writePolicy,
  type GroupWithMember,
} from '../support/system-install.js';
import { helperTaps } from '../support/taps.js';
import { waitFor, within } from '../support/wait.js';

let group = '';
let people: GroupWithMember | undefined;

let ns: Netns;
let polkit: Polkit | undefined;
let member: TestUser;
let saved: ReturnType<typeof savePolicy> | undefined;
let evil: string;
/** Set once this suite has installed: only then may it uninstall (never someone else's installation). */
let installed = false;

test.before(async () => {
  requireRoot('this suite');
  refuseIfInstalled();
  sweepStaleNetns();
  people = groupWithMember();
  ({ member } = people);
  group = people.group.name;
  saved = savePolicy();
  ns = createNetns({ bridges: ['br0'] });
  installed = true;
  const r = helperCli(['install', '--group', group]);
  if (r.status !== 0) throw new Error(`install failed: ${r.stderr}`);
  writePolicy([`allow br0 @${group}`]);
  // What a member would like the helper to read or run instead: a policy allowing everything, and
  // a module that leaves a mark (one file a uid) wherever it is loaded.
  evil = mkdtempSync('/tmp/xkvmevil-');
  chmodSync(evil, 0o1777);
  writeFileSync(join(evil, 'evil.conf'), 'allow * *\n', { mode: 0o644 });
  writeFileSync(join(evil, 'evil.cjs'), `require('fs').writeFileSync(${JSON.stringify(evil)} + '/loaded-by-uid-' + process.getuid(), process.argv.join(' '));\n`, { mode: 0o644 });
  polkit = await startPolkit();
  await waitFor(() => actionKnown(ACTION_ID), 10_000, { what: `polkitd to know ${ACTION_ID}`, intervalMs: 100 });
  await waitFor(() => pkexec(['--stdio']).status === 0, 10_000, { what: 'pkexec to run the launcher for the member', intervalMs: 200 });
});

test.after(async () => {
  try {
    if (installed) tearDown(saved);
  } finally {
    await polkit?.stop();
    ns?.destroy();
    if (evil !== undefined) rmSync(evil, { recursive: true, force: true });
    people?.remove();
  }
});

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * `pkexec LAUNCHER ARGS` as the member in the namespace, with extra environment and stdin bytes.
 * pkexec is started by a shell of the member's (which waits for it), not straight by runuser:
 * the helper takes pkexec's parent for the client and checks it runs as PKEXEC_UID, and runuser
 * runs as root.
 */
function pkexec(args: readonly string[], env: Record<string, string> = {}, input: Buffer = Buffer.alloc(0),
  parent: 'member-shell' | 'runuser' = 'member-shell'): Run {
  const command = [PKEXEC, PATHS.launcher, ...args];
  const argv = ns.command(parent === 'runuser' ? command : ['/bin/sh', '-c', '"$@"; exit $?', 'sh', ...command], { user: member.name, env });
  const r = spawnSync(argv[0]!, argv.slice(1), { input, timeout: 30_000, killSignal: 'SIGKILL', stdio: ['pipe', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout ?? Buffer.alloc(0), stderr: (r.stderr ?? Buffer.alloc(0)).toString('utf8') };
}

function marks(): string[] {
  return readdirSync(evil).filter((n) => n.startsWith('loaded-by-uid-'));
}

test('pkexec launcher --stdio --config FILE: polkit lets it through (argv1 is --stdio), and the helper refuses it without serving', () => {
  const request = encodeFrame(encodeBody({ v: 1, id: 1, op: 'make-nics', bridges: ['br0'], lifetime: 'persistent' }));
  const r = pkexec(['--stdio', '--config', join(evil, 'evil.conf')], {}, request);
  assert.is.not(r.status, 0);
  assert.is.not(r.status, 127, `the helper, not polkit, refuses it here: ${r.stderr}`);
  assert.is(r.stdout.length, 0, 'nothing served');
  assert.match(r.stderr, /only "--stdio" is accepted/);
  assert.equal(helperTaps(ns), []);
});

test('every other argument after --stdio is refused too (--state-dir, --socket, a second --stdio, install)', () => {
  for (const extra of [['--state-dir', evil], ['--socket', join(evil, 's.sock')], ['--stdio'], ['install'], ['--help']]) {
    const r = pkexec(['--stdio', ...extra]);
    assert.is.not(r.status, 0, `--stdio ${extra.join(' ')}`);
    assert.match(r.stderr, /only "--stdio" is accepted/, `--stdio ${extra.join(' ')}: ${r.stderr}`);
  }
  assert.not.ok(existsSync(join(evil, 's.sock')));
});

test('pkexec launcher with --config first is not the helper action (exec.argv1), so polkit refuses it: status 127, nothing runs', () => {
  const r = pkexec(['--config', join(evil, 'evil.conf'), '--stdio']);
  assert.is(r.status, 127, r.stderr);
  assert.is(r.stdout.length, 0);
});

test('NODE_OPTIONS=--require=evil set by the member loads for the member\'s own node, but never reaches the helper that pkexec starts as root', async () => {
  const nodeOptions = `--require=${join(evil, 'evil.cjs')}`;
  // Control: the payload works when it does reach node.
  const control = ns.exec([process.execPath, '-e', '0'], { user: member.name, env: { NODE_OPTIONS: nodeOptions } });
  assert.is(control.status, 0, control.stderr);
  assert.equal(marks(), [`loaded-by-uid-${member.uid}`]);
  rmSync(join(evil, `loaded-by-uid-${member.uid}`));

  // The helper under pkexec with the same environment: it serves (a session tap, removed at the end)...
  const session = openPkexecSession(ns, member.name, PATHS.launcher, { v: 1, id: 7, op: 'make-nics', bridges: ['br0'], lifetime: 'session' },
    { NODE_OPTIONS: nodeOptions, NODE_PATH: evil });
  const reply = await session.reply(15_000) as { id: number; ok: boolean; nics?: Array<{ tap: string; bridge: string }> };
  session.release();
  const status = await within(session.exited, 10_000, 'pkexec to exit');
  const stderr = session.stderr();
  assert.is(reply.id, 7, JSON.stringify(reply));
  assert.is(reply.ok, true, JSON.stringify(reply));
  assert.is(reply.nics?.[0]?.bridge, 'br0');
  assert.is(status, 0, stderr);
  // ...and the module never loaded, as root or anyone.
  assert.equal(marks(), [], 'evil.cjs was not loaded');
  assert.equal(helperTaps(ns), [], 'the session tap went with the session');
});

test('a helper whose parent is not the member\'s own process (pkexec run straight from root\'s runuser) refuses to serve: it cannot tell who the client is', () => {
  const request = encodeFrame(encodeBody({ v: 1, id: 3, op: 'make-nics', bridges: ['br0'], lifetime: 'session' }));
  const r = pkexec(['--stdio'], {}, request, 'runuser');
  const frames = new FrameDecoder().push(r.stdout);
  const reply = decodeMessage(frames[0]!) as { ok: boolean; error?: { code: string; message: string } };
  assert.is(reply.ok, false);
  assert.is(reply.error?.code, 'NO_IDENTITY', JSON.stringify(reply));
  assert.equal(helperTaps(ns), []);
});

test.run();
