import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { install } from '../../../helper/src/install/install.js';
import { uninstall } from '../../../helper/src/install/uninstall.js';
import { fakeCheckout, fakeGetent, installError, listTree, read, scratchInstall } from './support.js';

async function installed() {
  const target = scratchInstall();
  const checkout = fakeCheckout();
  await install({ helperMain: checkout.main, paths: target.paths, group: 'vmusers', getent: fakeGetent({ vmusers: [] }), out: () => {} });
  const printed: string[] = [];
  const run = () => uninstall({ paths: target.paths, out: (l) => printed.push(l) });
  return { ...target, printed, run, cleanup: () => { target.done(); checkout.done(); } };
}

/** Folders install creates above its files in a scratch root (they are not its own to remove). */
const scaffolding = ['etc', 'etc/polkit-1', 'etc/polkit-1/rules.d', 'etc/systemd', 'etc/systemd/system',
  'usr', 'usr/local', 'usr/local/libexec', 'usr/share', 'usr/share/polkit-1', 'usr/share/polkit-1/actions', 'var', 'var/log'];

test('uninstall removes everything install wrote, folders of its own included', async () => {
  const t = await installed();
  try {
    const result = t.run();
    assert.ok(result.paths.every((r) => r.outcome !== 'kept'), t.printed.join('\n'));
    assert.equal(listTree(t.root), scaffolding.sort());
  } finally {
    t.cleanup();
  }
});

test('uninstall keeps an edited helper.conf, and says so', async () => {
  const t = await installed();
  try {
    writeFileSync(t.paths.config, `${read(t.paths.config)}allow br0 @vmusers\n`);
    t.run();
    assert.ok(existsSync(t.paths.config));
    assert.ok(t.printed.some((l) => l.includes(t.paths.config) && l.includes('kept') && l.includes('edited')), t.printed.join('\n'));
    assert.not.ok(existsSync(t.paths.launcher));
  } finally {
    t.cleanup();
  }
});

test('uninstall keeps a file of the same name that install did not write', async () => {
  const t = await installed();
  try {
    writeFileSync(t.paths.rule, 'polkit.addRule(function () {});\n');
    const result = t.run();
    assert.ok(existsSync(t.paths.rule));
    assert.is(result.paths.find((r) => r.path === t.paths.rule)?.outcome, 'kept');
  } finally {
    t.cleanup();
  }
});

test('uninstall removes the link systemctl enable made, and keeps audit logs', async () => {
  const t = await installed();
  try {
    mkdirSync(join(t.paths.socketEnableLink, '..'), { recursive: true });
    symlinkSync(t.paths.socketUnit, t.paths.socketEnableLink);
    writeFileSync(join(t.paths.logDir, 'audit.log'), '{}\n');
    const result = t.run();
    assert.not.ok(existsSync(t.paths.socketEnableLink));
    assert.is(result.paths.find((r) => r.path === t.paths.logDir)?.outcome, 'kept');
    assert.ok(existsSync(join(t.paths.logDir, 'audit.log')));
  } finally {
    t.cleanup();
  }
});

test('a second uninstall finds nothing to remove', async () => {
  const t = await installed();
  try {
    t.run();
    const again = t.run();
    assert.ok(again.paths.every((r) => r.outcome === 'absent'), t.printed.join('\n'));
  } finally {
    t.cleanup();
  }
});

test('an ordinary user may not uninstall, and nothing is removed', async () => {
  const t = await installed();
  try {
    const before = listTree(t.root);
    const err = await installError(() => uninstall({ paths: t.paths, uid: 1000, out: () => {} }));
    assert.is(err.code, 'INSTALL_NOT_ROOT');
    assert.equal(listTree(t.root), before);
  } finally {
    t.cleanup();
  }
});

test.run();
