import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { underHome, underTmp } from '../../../helper/src/install/hidden-paths.js';
import { scratch } from './support.js';

test('paths under /home, /root or /run/user are the ones ProtectHome=yes would hide', () => {
  assert.equal(underHome(['/home/alice/xkvm/main.js', '/root/xkvm', '/run/user/1000/x', '/opt/xkvm', '/usr/bin/node', '/homestead/x']),
    ['/home/alice/xkvm/main.js', '/root/xkvm', '/run/user/1000/x']);
});

test('a symlink into a home folder counts as under it', () => {
  const s = scratch('home');
  try {
    const link = join(s.dir, 'code');
    symlinkSync('/root', link);
    assert.equal(underHome([link]), [link]);
  } finally {
    s.done();
  }
});

test('paths under /tmp or /var/tmp are the ones PrivateTmp=yes would hide', () => {
  assert.equal(underTmp(['/tmp/xkvm/dist/helper/src/main.js', '/var/tmp/node', '/tmp', '/opt/xkvm', '/tmpfs/x', '/var/tmpx/y', '/run/xkvm']),
    ['/tmp/xkvm/dist/helper/src/main.js', '/var/tmp/node', '/tmp']);
});

test('a symlink into /tmp counts as under it', () => {
  const s = scratch('tmp-link', '/run');
  try {
    const link = join(s.dir, 'code');
    symlinkSync('/tmp', link);
    assert.equal(underTmp([link]), [link]);
  } finally {
    s.done();
  }
});

test.run();
