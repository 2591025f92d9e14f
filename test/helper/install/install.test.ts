import { chmodSync, chownSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ACTION_ID } from '../../../helper/src/install/action.js';
import { DEFAULT_CONFIG, DEFAULT_CONFIG_NO_AUDIT_LOG } from '../../../helper/src/install/config.js';
import { install, type InstallOptions } from '../../../helper/src/install/install.js';
import { uninstall } from '../../../helper/src/install/uninstall.js';
import type { InstallPaths } from '../../../helper/src/install/paths.js';
import { fakeCheckout, fakeGetent, installError, listTree, mode, read, REPO, scratch, scratchInstall, unitSettings } from './support.js';

const getent = fakeGetent({ vmusers: ['alice'] });

/** A scratch root and a fake checkout; `run` installs from it quietly, returning what it printed. */
function setup() {
  const target = scratchInstall();
  const checkout = fakeCheckout();
  const printed: string[] = [];
  const run = (extra: Partial<InstallOptions> = {}) => install({
    helperMain: checkout.main, paths: target.paths, getent, out: (l) => printed.push(l), ...extra,
  });
  return { ...target, checkout, printed, run, cleanup: () => { target.done(); checkout.done(); } };
}

const written = (paths: InstallPaths) => [paths.launcher, paths.action, paths.rule, paths.socketUnit, paths.serviceUnit, paths.config];

test('install writes the launcher, action, rule, units and helper.conf with explicit modes, owned by root', async () => {
  const t = setup();
  try {
    const result = await t.run({ group: 'vmusers' });
    assert.equal(result.files.map((f) => [f.path, f.outcome]), written(t.paths).map((p) => [p, 'created']));
    assert.is(mode(t.paths.launcher), 0o755);
    for (const p of written(t.paths).slice(1)) assert.is(mode(p), 0o644, p);
    assert.is(mode(t.paths.logDir), 0o750);
    assert.is(mode(join(t.root, 'usr/local/libexec/xkvm')), 0o755);
  } finally {
    t.cleanup();
  }
});

test('the installed files point at each other: action → launcher → main, units → node and main', async () => {
  const t = setup();
  try {
    await t.run({ group: 'vmusers' });
    const launcher = read(t.paths.launcher);
    assert.is(launcher.split('\n')[0], `#!${process.execPath}`);
    assert.ok(launcher.includes(`file://${t.checkout.main}`));
    assert.ok(read(t.paths.action).includes(`<annotate key="org.freedesktop.policykit.exec.path">${t.paths.launcher}</annotate>`));
    assert.ok(read(t.paths.rule).includes('subject.isInGroup("vmusers")'));
    assert.ok(read(t.paths.rule).includes(ACTION_ID));
    assert.ok(unitSettings(read(t.paths.serviceUnit)).includes(`ExecStart=${process.execPath} ${t.checkout.main}`));
    assert.ok(unitSettings(read(t.paths.socketUnit)).includes(`ListenStream=${t.paths.socket}`));
    assert.is(read(t.paths.config), DEFAULT_CONFIG);
  } finally {
    t.cleanup();
  }
});

test('a second install changes nothing and says every file is unchanged (helper.conf kept)', async () => {
  const t = setup();
  try {
    await t.run({ group: 'vmusers' });
    const before = listTree(t.root);
    t.printed.length = 0;
    const again = await t.run({ group: 'vmusers' });
    assert.equal(again.dirsCreated, []);
    assert.equal(again.files.map((f) => f.outcome), ['unchanged', 'unchanged', 'unchanged', 'unchanged', 'unchanged', 'kept']);
    assert.equal(listTree(t.root), before);
    assert.is(t.printed.filter((l) => /^ {2}unchanged /.test(l)).length, 5, t.printed.join('\n'));
  } finally {
    t.cleanup();
  }
});

test('install repairs a changed file and its mode, and never touches an existing helper.conf', async () => {
  const t = setup();
  try {
    await t.run();
    writeFileSync(t.paths.serviceUnit, '[Service]\nExecStart=/bin/sh\n');
    chmodSync(t.paths.launcher, 0o777);
    writeFileSync(t.paths.config, 'allow br0 @vmusers\n');
    const again = await t.run();
    const outcome = (p: string) => again.files.find((f) => f.path === p)?.outcome;
    assert.is(outcome(t.paths.serviceUnit), 'updated');
    assert.is(outcome(t.paths.launcher), 'updated');
    assert.is(mode(t.paths.launcher), 0o755);
    assert.is(outcome(t.paths.config), 'kept');
    assert.is(read(t.paths.config), 'allow br0 @vmusers\n');
  } finally {
    t.cleanup();
  }
});

test('where a folder above the log folder is group-writable (Ubuntu\'s /var/log, root:syslog 0775), the new helper.conf has its audit-log line commented out, the report says why, and uninstall still knows it as untouched', async () => {
  const t = setup();
  try {
    const varLog = join(t.root, 'var', 'log');
    mkdirSync(varLog, { recursive: true, mode: 0o755 });
    chmodSync(varLog, 0o775);
    await t.run({ group: 'vmusers' });
    assert.is(read(t.paths.config), DEFAULT_CONFIG_NO_AUDIT_LOG);
    const note = t.printed.find((l) => l.includes('has no audit-log line'));
    assert.ok(note !== undefined, t.printed.join('\n'));
    assert.match(note, /writable by group or others \(mode 0775\)/);
    const removed = uninstall({ paths: t.paths, out: () => {} });
    assert.is(removed.paths.find((r) => r.path === t.paths.config)?.outcome, 'removed');
  } finally {
    t.cleanup();
  }
});

test('without --group no rule is written, and the next steps say how to add one', async () => {
  const t = setup();
  try {
    await t.run();
    assert.not.ok(existsSync(t.paths.rule));
    assert.ok(t.printed.some((l) => l.includes('xkvm-helper install --group NAME')), t.printed.join('\n'));
  } finally {
    t.cleanup();
  }
});

test('the report names every path and the admin\'s next steps', async () => {
  const t = setup();
  try {
    await t.run({ group: 'vmusers' });
    const text = t.printed.join('\n');
    for (const p of written(t.paths)) assert.ok(text.includes(p), p);
    assert.ok(text.includes('allow br0 @vmusers'));
    assert.ok(text.includes('xkvm-helper policy check --user'));
    assert.ok(text.includes('socket activation is not available'), 'no /run/systemd/system under the scratch root');
  } finally {
    t.cleanup();
  }
});

test('with systemd running the next step is to enable the socket', async () => {
  const t = setup();
  try {
    mkdirSync(t.paths.systemdRunning, { recursive: true });
    await t.run();
    assert.ok(t.printed.some((l) => l.includes('systemctl daemon-reload && systemctl enable --now xkvm-helper.socket')));
  } finally {
    t.cleanup();
  }
});

test('a group that does not exist is refused and nothing is written', async () => {
  const t = setup();
  try {
    const err = await installError(() => t.run({ group: 'nosuchgroup' }));
    assert.is(err.code, 'INSTALL_BAD_GROUP');
    assert.match(err.message, /no such group/);
    assert.equal(listTree(t.root), []);
  } finally {
    t.cleanup();
  }
});

test('a group name with unsafe characters is refused before any lookup, and nothing is written', async () => {
  const t = setup();
  try {
    for (const bad of ['a")||true||("', '-rf', '', '1234', 'a b', 'x\ny']) {
      const err = await installError(() => t.run({ group: bad, getent: () => { throw new Error('looked up'); } }));
      assert.is(err.code, 'INSTALL_BAD_GROUP', bad);
    }
    assert.equal(listTree(t.root), []);
  } finally {
    t.cleanup();
  }
});

test('an ordinary user is refused and nothing is written', async () => {
  const t = setup();
  try {
    const err = await installError(() => t.run({ uid: 1000 }));
    assert.is(err.code, 'INSTALL_NOT_ROOT');
    assert.match(err.message, /must run as root/);
    assert.equal(listTree(t.root), []);
  } finally {
    t.cleanup();
  }
});

test('code that group or others may write is refused, naming the path and the fix', async () => {
  const t = setup();
  try {
    const lib = t.checkout.write('node_modules/msgpackr/index.js', 'export {};\n');
    chmodSync(join(t.checkout.dir, 'node_modules/msgpackr'), 0o775);
    const err = await installError(() => t.run());
    assert.is(err.code, 'INSTALL_UNSAFE_CODE');
    assert.ok(err.message.includes(`${join(t.checkout.dir, 'node_modules/msgpackr')}: writable by group or others (mode 0775)`), err.message);
    assert.ok(err.message.includes(`chown -R root:root ${t.checkout.dir} && chmod -R go-w ${t.checkout.dir}`), err.message);
    assert.ok(existsSync(lib));
    assert.equal(listTree(t.root), []);
  } finally {
    t.cleanup();
  }
});

test('code owned by another user is refused, even deep inside the compiled helper', async () => {
  const t = setup();
  try {
    const file = t.checkout.write('dist/helper/src/policy/parse.js', 'export {};\n');
    chownSync(file, 65534, 65534);
    const err = await installError(() => t.run());
    assert.ok(err.message.includes(`${file}: owned by uid 65534, not root`), err.message);
    assert.equal(listTree(t.root), []);
  } finally {
    t.cleanup();
  }
});

test('a symlink out of the checkout is followed, and its unsafe target refused', async () => {
  const t = setup();
  const outside = fakeCheckout();
  try {
    chmodSync(outside.dir, 0o777);
    symlinkSync(join(outside.dir, 'node_modules/msgpackr'), join(t.checkout.dir, 'node_modules/linked'));
    const err = await installError(() => t.run());
    assert.ok(err.message.includes(`${outside.dir}: writable by group or others (mode 0777)`), err.message);
  } finally {
    outside.done();
    t.cleanup();
  }
});

test('a parent folder of the checkout that others may write is refused', async () => {
  const t = setup();
  try {
    chmodSync(join(t.checkout.dir, 'dist'), 0o757);
    const err = await installError(() => t.run());
    assert.ok(err.message.includes(`${join(t.checkout.dir, 'dist')}: writable by group or others (mode 0757)`), err.message);
  } finally {
    t.cleanup();
  }
});

test('a main reached through a symlink is judged by the folders of the link as well as the target', async () => {
  const t = setup();
  const open = fakeCheckout();
  try {
    chmodSync(open.dir, 0o777);
    const link = join(open.dir, 'current');
    symlinkSync(t.checkout.dir, link);
    const err = await installError(() => t.run({ helperMain: join(link, 'dist/helper/src/main.js') }));
    assert.ok(err.message.includes(`${open.dir}: writable by group or others (mode 0777)`), err.message);
  } finally {
    open.done();
    t.cleanup();
  }
});

test('a missing helper main is refused: build first', async () => {
  const t = setup();
  try {
    const err = await installError(() => t.run({ helperMain: join(t.checkout.dir, 'dist/helper/src/nope.js') }));
    assert.is(err.code, 'INSTALL_BAD_PATH');
    assert.match(err.message, /does not exist/);
    assert.equal(listTree(t.root), []);
  } finally {
    t.cleanup();
  }
});

test('a checkout under /root gets ProtectHome=read-only, with a note saying why', async () => {
  const t = setup();
  const underRoot = fakeCheckout('/root');
  try {
    const result = await t.run({ helperMain: underRoot.main });
    const settings = unitSettings(read(t.paths.serviceUnit));
    assert.ok(settings.includes('ProtectHome=read-only'), settings.join('\n'));
    assert.ok(result.notes.some((n) => n.includes(underRoot.main) && n.includes('ProtectHome=read-only')), result.notes.join('\n'));
  } finally {
    underRoot.done();
    t.cleanup();
  }
});

test('a checkout under /tmp is refused, naming it and where to put it, with nothing written', async () => {
  const t = setup();
  const underTmp = fakeCheckout('/tmp');
  try {
    const err = await installError(() => t.run({ helperMain: underTmp.main }));
    assert.is(err.code, 'INSTALL_BAD_PATH');
    assert.match(err.message, /PrivateTmp=yes/);
    assert.ok(err.message.includes(underTmp.main), err.message);
    assert.match(err.message, /\/opt\/xkvm/);
    assert.equal(listTree(t.root), []);
  } finally {
    underTmp.done();
    t.cleanup();
  }
});

test('node under /var/tmp is refused too', async () => {
  const t = setup();
  const nodeDir = scratch('node', '/var/tmp');
  try {
    const node = join(nodeDir.dir, 'node');
    writeFileSync(node, '');
    chmodSync(node, 0o755);
    const err = await installError(() => t.run({ nodePath: node }));
    assert.is(err.code, 'INSTALL_BAD_PATH');
    assert.ok(err.message.includes(node) && err.message.includes('PrivateTmp=yes'), err.message);
    assert.equal(listTree(t.root), []);
  } finally {
    nodeDir.done();
    t.cleanup();
  }
});

test('elsewhere the service hides home folders entirely', async () => {
  const t = setup();
  try {
    await t.run();
    assert.ok(unitSettings(read(t.paths.serviceUnit)).includes('ProtectHome=yes'));
  } finally {
    t.cleanup();
  }
});

test('this checkout as built here passes the code check', async () => {
  const t = setup();
  try {
    const main = join(REPO, 'dist/helper/src/main.js');
    const result = await t.run({ helperMain: main });
    assert.ok(result.files.every((f) => f.outcome === 'created'));
  } finally {
    t.cleanup();
  }
});

test.run();
