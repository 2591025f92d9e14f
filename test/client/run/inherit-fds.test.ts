// runInPty's inheritFds (how qemu gets its tap fds): exactly the fds named reach the child at
// the same numbers, an O_CLOEXEC fd not named does not, and the client's copies are closed as
// soon as the child has started (so the taps are then the child's alone).
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { fstatSync, openSync } from 'node:fs';
import { closeFds, socketPair } from '../../../client/src/native/fdpass.js';
import { runInPty } from '../../../client/src/run/pty.js';

/** Status 0 when every fd in `yes` is open in the child and none in `no`; else 1. */
function probe(yes: number[], no: number[]): string[] {
  const script = [...yes.map((fd) => `test -e /proc/self/fd/${fd} || exit 1`), ...no.map((fd) => `test -e /proc/self/fd/${fd} && exit 1`), 'exit 0'].join('; ');
  return ['/bin/sh', '-c', script];
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

test('the fds named reach the child at their numbers, another O_CLOEXEC fd does not, and ours are closed once it has started', async () => {
  const [a, b] = socketPair();
  const [c, d] = socketPair();
  const file = openSync('/dev/null', 'r'); // Node opens it O_CLOEXEC
  let openAtStart: boolean[] = [];
  try {
    const status = await runInPty(probe([a, c], [b, d, file]), { inheritFds: [a, c], onStart: () => { openAtStart = [a, c].map(isOpen); } });
    assert.is(status, 0, 'the child saw exactly the fds named');
    assert.equal(openAtStart, [false, false], 'the client closed its copies as the child started');
    assert.ok(isOpen(b) && isOpen(d) && isOpen(file), 'other fds are left alone');
  } finally {
    closeFds([a, b, c, d, file]);
  }
});

test('without inheritFds the child gets none of them', async () => {
  const [a, b] = socketPair();
  try {
    assert.is(await runInPty(probe([], [a, b])), 0);
    assert.ok(isOpen(a) && isOpen(b));
  } finally {
    closeFds([a, b]);
  }
});

test.run();
