import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { renderLauncher } from '../../../helper/src/install/launcher.js';
import { fakeCheckout, installError, scratch } from './support.js';

test('the launcher starts with #! and the absolute node path, no env and no shell', () => {
  const text = renderLauncher('/usr/bin/node', '/opt/xkvm/dist/helper/src/main.js');
  assert.is(text.split('\n')[0], '#!/usr/bin/node');
});

test('the launcher imports the helper main by its absolute file URL', () => {
  const text = renderLauncher('/usr/bin/node', '/opt/x kvm/dist/helper/src/main.js');
  assert.ok(text.includes(`import(${JSON.stringify(pathToFileURL('/opt/x kvm/dist/helper/src/main.js').href)});`), text);
});

test('a relative node path or main path is refused', async () => {
  assert.is((await installError(() => renderLauncher('node', '/opt/main.js'))).code, 'INSTALL_BAD_PATH');
  assert.is((await installError(() => renderLauncher('/usr/bin/node', 'dist/main.js'))).code, 'INSTALL_BAD_PATH');
});

test('a node path with white space or a newline is refused, since #! could not hold it', async () => {
  assert.match((await installError(() => renderLauncher('/opt/my node/node', '/opt/main.js'))).message, /white space/);
  assert.match((await installError(() => renderLauncher('/opt/node\n/x', '/opt/main.js'))).message, /control character/);
});

test('run as a program, the launcher runs the main with the arguments it was given', () => {
  const checkout = fakeCheckout();
  const s = scratch('launcher');
  try {
    const launcher = join(s.dir, 'xkvm-helper');
    writeFileSync(launcher, renderLauncher(process.execPath, checkout.main));
    chmodSync(launcher, 0o755);
    // No PATH at all, as under pkexec's scrubbed environment it could be anything.
    const r = spawnSync(launcher, ['--stdio'], { encoding: 'utf8', env: {} });
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).argv, ['--stdio']);
    assert.is(r.stderr, '');
  } finally {
    s.done();
    checkout.done();
  }
});

test.run();
