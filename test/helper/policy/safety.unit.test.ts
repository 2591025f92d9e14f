import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { loadPolicy } from '../../../helper/src/policy/parse.js';
import { requireRootOwnedFile } from '../../../helper/src/policy/safety.js';
import { acceptAnyFile, policyError, tempDir } from './support.js';

const NOBODY = 65534;
const root = process.getuid?.() === 0;
const EXPECTED = 'expected a regular file owned by root, not writable by group or others, in directories only root can change';

test('the default check refuses a policy file writable by others (mode 0666)', () => {
  const t = tempDir();
  try {
    const path = t.write('helper.conf', 'allow br0 alice\n', 0o666);
    const err = policyError(() => loadPolicy(path));
    assert.is(err.code, 'POLICY_UNSAFE_FILE');
    const problem = root ? 'it is writable by group or others (mode 0666)' : 'not root';
    assert.ok(err.message.startsWith(`${path}: refusing it: `), err.message);
    assert.ok(err.message.includes(problem), err.message);
    assert.ok(err.message.endsWith(EXPECTED), err.message);
  } finally {
    t.done();
  }
});

test('the default check refuses a group-writable policy file (mode 0664)', () => {
  const t = tempDir();
  try {
    const path = t.write('helper.conf', 'allow br0 alice\n', 0o664);
    assert.is(policyError(() => loadPolicy(path)).code, 'POLICY_UNSAFE_FILE');
  } finally {
    t.done();
  }
});

test('the default check refuses a policy file owned by a user other than root', () => {
  const t = tempDir();
  try {
    const path = t.write('helper.conf', 'allow br0 alice\n', 0o644);
    if (root) chownSync(path, NOBODY, NOBODY);
    const owner = root ? NOBODY : process.getuid?.();
    const err = policyError(() => loadPolicy(path));
    assert.is(err.code, 'POLICY_UNSAFE_FILE');
    assert.is(err.message, `${path}: refusing it: it is owned by uid ${owner}, not root; ${EXPECTED}`);
  } finally {
    t.done();
  }
});

test('the default check refuses an unsafe included file at the include line', () => {
  const t = tempDir();
  try {
    const main = t.write('main.conf', '# main\ninclude extra.conf\n');
    const extra = t.write('extra.conf', 'allow br0 mallory\n', 0o646);
    // The including file is let through, so that for an ordinary user too (whose files are never
    // root's) the default check meets the included one; as root it would pass anyway.
    const err = policyError(() => loadPolicy(main, { checkFile: (path, stat) => (path === main ? undefined : requireRootOwnedFile(path, stat)) }));
    assert.is(err.code, 'POLICY_UNSAFE_FILE');
    assert.is(err.line, 2);
    assert.ok(err.message.startsWith(`${main}:2: refusing included file ${extra}: `), err.message);
  } finally {
    t.done();
  }
});

test('the default check refuses a root-owned file in a directory others can write', () => {
  const t = tempDir();
  try {
    mkdirSync(t.path('open'));
    chmodSync(t.path('open'), 0o777);
    const path = t.write('open/helper.conf', 'allow br0 alice\n');
    const err = policyError(() => loadPolicy(path));
    assert.is(err.code, 'POLICY_UNSAFE_FILE');
    const problem = root ? `its directory ${t.path('open')} is writable by group or others (mode 0777)` : 'not root';
    assert.ok(err.message.includes(problem), err.message);
  } finally {
    t.done();
  }
});

test('a directory or FIFO is refused even when the ownership check is skipped', () => {
  const t = tempDir();
  try {
    mkdirSync(t.path('dir.conf'));
    assert.ok(policyError(() => loadPolicy(t.path('dir.conf'), { checkFile: acceptAnyFile })).message
      .includes('refusing it: it is a directory'));
    execFileSync('/usr/bin/mkfifo', [t.path('fifo.conf')]);
    const err = policyError(() => loadPolicy(t.path('fifo.conf'), { checkFile: acceptAnyFile }));
    assert.is(err.code, 'POLICY_UNSAFE_FILE');
    assert.ok(err.message.includes('it is a FIFO'), err.message);
  } finally {
    t.done();
  }
});

test('a root-owned 0644 file in root-owned directories passes the default check (as root)', () => {
  const t = tempDir();
  try {
    const path = t.write('helper.conf', 'allow br0 alice\n', 0o644);
    if (root) {
      assert.is(loadPolicy(path).access.length, 1);
    } else {
      assert.is(policyError(() => loadPolicy(path)).code, 'POLICY_UNSAFE_FILE');
    }
  } finally {
    t.done();
  }
});

test('a missing policy file is an I/O error naming it', () => {
  const err = policyError(() => loadPolicy('/nonexistent/xkvm/helper.conf'));
  assert.is(err.code, 'POLICY_IO');
  assert.is(err.message,
    '/nonexistent/xkvm/helper.conf: cannot read it (ENOENT: no such file or directory); expected a readable policy file');
  assert.instance(err.cause, Error);
});

test('a custom check is used in place of the default', () => {
  const t = tempDir();
  try {
    const path = t.write('helper.conf', 'allow br0 alice\n', 0o666);
    const err = policyError(() => loadPolicy(path, { checkFile: () => 'the test says no' }));
    assert.ok(err.message.includes('refusing it: the test says no;'), err.message);
  } finally {
    t.done();
  }
});

test.run();
