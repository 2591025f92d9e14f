/**
 * The client on a real terminal: it is started inside a pseudo-terminal made by this test, and
 * runs a stand-in for qemu (--kvm) that reports its own terminal's size and settings, so the
 * test sees what qemu would see: raw mode (keys arrive one by one, unechoed by the client's
 * terminal), window-size changes forwarded, and the user's terminal restored afterwards.
 */
import { test } from '../../support/suite.js';
import { PATIENCE_MS, waitFor as waitUntil } from '../../support/wait.js';
import * as assert from 'uvu/assert';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pty from 'node-pty';
import { CLIENT_MAIN } from '../../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'xkvm-tty-'));
const fake = join(dir, 'fake-qemu');
// Prints its size, <RAW> once in raw mode, then on each WINCH the new size; echoes each key as
// <KEY:x>; q quits 3.
writeFileSync(fake, `#!/bin/bash
trap 'echo "<SIZE:$(stty size)>"' WINCH
echo "<SIZE:$(stty size)>"
stty raw -echo
# Keys typed before this line would be echoed by qemu's own pty (not the client): say when it's safe.
printf '<RAW>\\r\\n'
# A short read timeout lets bash run the WINCH trap while waiting for keys.
while true; do
  IFS= read -r -n1 -t 0.1 -d '' key || continue
  [ "$key" = q ] && { stty sane; exit 3; }
  printf '<KEY:%s>\\r\\n' "$key"
done
`);
chmodSync(fake, 0o755);

function start(): { term: pty.IPty; output: () => string; exited: Promise<number> } {
  let out = '';
  // An interactive shell-less launch: the client is the pty's session leader.
  const term = pty.spawn(process.execPath, [CLIENT_MAIN, '--kvm', fake, '-n', 'user', '--', '-nographic'], {
    cols: 100, rows: 30, cwd: dir, env: { ...process.env, XDG_CACHE_HOME: join(dir, 'cache') } as Record<string, string>,
  });
  term.onData((d) => { out += d; });
  const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
  return { term, output: () => out, exited };
}

async function waitFor(read: () => string, text: string, ms = PATIENCE_MS): Promise<void> {
  await waitUntil(() => read().includes(text), ms, { what: JSON.stringify(text), describe: () => `got ${JSON.stringify(read().slice(-400))}` });
}

test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Run `body` with a started client; the pty is killed whatever happens, so no test can hang. */
async function withClient(body: (c: ReturnType<typeof start>) => Promise<void>): Promise<void> {
  const c = start();
  try {
    await body(c);
  } finally {
    try {
      c.term.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

test('qemu gets a terminal of the user\'s size, and resizes reach it', () => withClient(async ({ term, output, exited }) => {
  await waitFor(output, '<SIZE:30 100>');
  term.resize(120, 40);
  await waitFor(output, '<SIZE:40 120>');
  term.write('q');
  assert.is(await exited, 3);
}));

test('keys reach qemu one at a time, without waiting for Enter, and are not echoed by the client', () => withClient(async ({ term, output, exited }) => {
  await waitFor(output, '<RAW>');
  term.write('a');
  await waitFor(output, '<KEY:a>');
  const afterStart = output().slice(output().indexOf('<RAW>'));
  assert.not.ok(afterStart.replace('<KEY:a>', '').includes('a'), 'the key appears only in the stand-in\'s echo');
  term.write('q');
  assert.is(await exited, 3);
}));

test("qemu's exit status is the client's, and the terminal is back in cooked mode afterwards", async () => {
  // Run the client under bash in the same pty, then ask stty what the terminal is like.
  let out = '';
  const term = pty.spawn('/bin/bash', ['--norc', '--noprofile', '-c',
    `"${process.execPath}" "${CLIENT_MAIN}" --kvm "${fake}" -n user -- -nographic; echo "<STATUS:$?>"; stty -a | tr ' ' '\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' '; echo '<END>'`], {
    cols: 80, rows: 24, cwd: dir, env: { ...process.env, XDG_CACHE_HOME: join(dir, 'cache') } as Record<string, string>,
  });
  term.onData((d) => { out += d; });
  try {
    await waitFor(() => out, '<SIZE:');
    term.write('q');
    await waitFor(() => out, '<END>');
  } finally {
    term.kill('SIGKILL');
  }
  assert.match(out, '<STATUS:3>');
  assert.match(out, /icanon echo|echo icanon/);
  assert.match(out, '\x1b[?7h', 'auto-wrap restored');
});

test.run();
