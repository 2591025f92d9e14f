// xkvm-helper install and uninstall of xkvm-bridge-helper's launcher, for qemu's helper= and
// libvirt's bridge_helper: written (0755, not setuid) when the checkout has the bundle, pointing
// at it; run as a program it runs the bundle with its arguments; left out with a note when the
// bundle is missing; removed by uninstall.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { install } from '../../../helper/src/install/install.js';
import { renderBridgeHelperLauncher } from '../../../helper/src/install/launcher.js';
import { DEFAULT_PATHS } from '../../../helper/src/install/paths.js';
import { uninstall } from '../../../helper/src/install/uninstall.js';
import { fakeCheckout, fakeGetent, read, REPO, scratchInstall } from './support.js';

const BUNDLE = 'dist/bin/xkvm-bridge-helper.cjs';
/** A stand-in bundle (CommonJS, as the real one) that prints what it got. */
const STUB = 'console.log(JSON.stringify({ argv: process.argv.slice(2), file: __filename }));\n';

async function installFrom(withBundle: boolean) {
  const target = scratchInstall();
  const checkout = fakeCheckout();
  const bundle = withBundle ? checkout.write(BUNDLE, STUB) : join(checkout.dir, BUNDLE);
  const printed: string[] = [];
  const result = await install({ helperMain: checkout.main, paths: target.paths, getent: fakeGetent({}), out: (l) => printed.push(l) });
  return { ...target, checkout, bundle, printed, result, cleanup: () => { target.done(); checkout.done(); } };
}

test('the launcher is installed at /usr/local/libexec/xkvm/xkvm-bridge-helper, beside the pkexec one', () => {
  assert.is(DEFAULT_PATHS.bridgeLauncher, '/usr/local/libexec/xkvm/xkvm-bridge-helper');
});

test('install writes the bridge helper launcher, mode 0755 (run by users: no setuid), #! node, importing the bundle', async () => {
  const t = await installFrom(true);
  try {
    assert.ok(t.result.files.some((f) => f.path === t.paths.bridgeLauncher && f.outcome === 'created'), t.printed.join('\n'));
    assert.is(statSync(t.paths.bridgeLauncher).mode & 0o7777, 0o755);
    const text = read(t.paths.bridgeLauncher);
    assert.is(text.split('\n')[0], `#!${process.execPath}`);
    assert.ok(text.includes(`import(${JSON.stringify(pathToFileURL(t.bundle).href)});`), text);
    assert.ok(t.printed.some((l) => l.includes(t.paths.bridgeLauncher) && l.includes('0755')), t.printed.join('\n'));
  } finally {
    t.cleanup();
  }
});

test('run as a program with an empty environment, the launcher runs the bundle with exactly its arguments', async () => {
  const t = await installFrom(true);
  try {
    const r = spawnSync(t.paths.bridgeLauncher, ['--use-vnet', '--fd=8', '--br=br0'], { encoding: 'utf8', env: {} });
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), { argv: ['--use-vnet', '--fd=8', '--br=br0'], file: t.bundle });
  } finally {
    t.cleanup();
  }
});

test('with the real bundle, the launcher runs the real xkvm-bridge-helper (its addon found from the checkout): a bad --fd is one line and status 1', () => {
  const target = scratchInstall();
  try {
    const launcher = target.paths.bridgeLauncher;
    mkdirSync(dirname(launcher), { recursive: true });
    writeFileSync(launcher, renderBridgeHelperLauncher(process.execPath, join(REPO, BUNDLE)), { mode: 0o755 });
    const r = spawnSync(launcher, ['--br=br0', '--fd=99'], { encoding: 'utf8', env: {} });
    assert.is(r.status, 1);
    assert.is(r.stderr, 'xkvm-bridge-helper: --fd=99 is not an open file descriptor: qemu or libvirt runs this program with the socket it reads the tap from\n');
  } finally {
    target.done();
  }
});

test('a checkout without the bundle: no bridge helper launcher, and a note saying how to get one', async () => {
  const t = await installFrom(false);
  try {
    assert.not.ok(existsSync(t.paths.bridgeLauncher));
    assert.ok(t.result.notes.some((n) => n.includes(t.paths.bridgeLauncher) && n.includes('npm run build')), t.result.notes.join('\n'));
  } finally {
    t.cleanup();
  }
});

test('uninstall removes the bridge helper launcher (and then the launcher folder)', async () => {
  const t = await installFrom(true);
  try {
    const printed: string[] = [];
    const result = uninstall({ paths: t.paths, out: (l) => printed.push(l) });
    assert.ok(result.paths.some((r) => r.path === t.paths.bridgeLauncher && r.outcome === 'removed'), printed.join('\n'));
    assert.not.ok(existsSync(t.paths.bridgeLauncher));
    assert.not.ok(existsSync(join(t.root, 'usr/local/libexec/xkvm')));
  } finally {
    t.cleanup();
  }
});

test.run();
