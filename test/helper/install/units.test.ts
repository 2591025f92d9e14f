import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { DEFAULT_PATHS } from '../../../helper/src/install/paths.js';
import { renderServiceUnit } from '../../../helper/src/install/service-unit.js';
import { renderSocketUnit } from '../../../helper/src/install/socket-unit.js';
import { unitWord } from '../../../helper/src/install/unit-quote.js';
import { fakeCheckout, installError, scratch, unitSettings } from './support.js';

const MAIN = '/opt/xkvm/dist/helper/src/main.js';
const service = (protectHome: 'yes' | 'read-only' = 'yes', main = MAIN) =>
  renderServiceUnit({ paths: DEFAULT_PATHS, nodePath: '/usr/bin/node', helperMain: main, protectHome });

test('the socket listens on /run/xkvm/helper.sock, mode 0666, creating /run/xkvm', () => {
  const settings = unitSettings(renderSocketUnit(DEFAULT_PATHS));
  for (const s of ['ListenStream=/run/xkvm/helper.sock', 'SocketMode=0666', 'DirectoryMode=0755', 'Accept=no',
    'RemoveOnStop=yes', 'WantedBy=sockets.target']) {
    assert.ok(settings.includes(s), `${s} missing from\n${settings.join('\n')}`);
  }
});

test('the service runs node on the helper main by absolute paths, without --config', () => {
  const settings = unitSettings(service());
  assert.ok(settings.includes(`ExecStart=/usr/bin/node ${MAIN}`), settings.join('\n'));
  assert.not.ok(settings.some((s) => s.includes('--config')), settings.join('\n'));
});

test('the service carries the hardening settings', () => {
  const settings = unitSettings(service());
  for (const s of [
    'CapabilityBoundingSet=CAP_NET_ADMIN', 'AmbientCapabilities=', 'NoNewPrivileges=yes',
    'ProtectSystem=strict', 'ReadWritePaths=/run/xkvm -/var/log/xkvm', 'ProtectHome=yes', 'PrivateTmp=yes',
    'DevicePolicy=closed', 'DeviceAllow=/dev/net/tun rw', 'ProtectKernelTunables=yes', 'ProtectKernelModules=yes',
    'ProtectControlGroups=yes', 'RestrictAddressFamilies=AF_UNIX AF_NETLINK', 'LockPersonality=yes',
    'RestrictRealtime=yes', 'SystemCallArchitectures=native', 'Restart=on-failure', 'Requires=xkvm-helper.socket',
  ]) {
    assert.ok(settings.includes(s), `${s} missing from\n${settings.join('\n')}`);
  }
});

test('the service never sets MemoryDenyWriteExecute, PrivateNetwork, PrivateDevices or PrivateUsers', () => {
  const keys = unitSettings(service()).map((s) => s.split('=')[0]);
  for (const bad of ['MemoryDenyWriteExecute', 'PrivateNetwork', 'PrivateDevices', 'PrivateUsers', 'ProtectProc']) {
    assert.not.ok(keys.includes(bad), `${bad} is set`);
  }
  assert.match(service(), /# +MemoryDenyWriteExecute= +breaks V8's JIT/);
});

test('with code under a home folder the service makes homes read-only instead of hiding them', () => {
  const settings = unitSettings(service('read-only', '/root/xkvm/dist/helper/src/main.js'));
  assert.ok(settings.includes('ProtectHome=read-only'));
  assert.not.ok(settings.includes('ProtectHome=yes'));
});

test('unit words with spaces, quotes, % or $ are quoted so systemd reads them back unchanged', () => {
  assert.is(unitWord('/opt/xkvm/main.js', 'argument'), '/opt/xkvm/main.js');
  assert.is(unitWord('/opt/my xkvm/main.js', 'argument'), '"/opt/my xkvm/main.js"');
  assert.is(unitWord('/opt/100%/a"b\\c', 'path'), '"/opt/100%%/a\\"b\\\\c"');
  assert.is(unitWord('/opt/$HOME/x', 'argument'), '/opt/$$HOME/x');
  assert.is(unitWord('/opt/$HOME/x', 'executable'), '/opt/$HOME/x');
  assert.is(unitWord('/opt/$HOME/x', 'path'), '/opt/$HOME/x');
});

test('systemd-analyze verify accepts the generated units without a warning', () => {
  const checkout = fakeCheckout();
  const s = scratch('units');
  try {
    // A main path with a space and a %, to prove the quoting on a real parser.
    const main = checkout.write('dist/helper/src/100% main.js', 'export {};\n');
    writeFileSync(join(s.dir, 'xkvm-helper.socket'), renderSocketUnit(DEFAULT_PATHS));
    writeFileSync(join(s.dir, 'xkvm-helper.service'),
      renderServiceUnit({ paths: DEFAULT_PATHS, nodePath: process.execPath, helperMain: main, protectHome: 'yes' }));
    const r = spawnSync('systemd-analyze', ['verify', './xkvm-helper.socket', './xkvm-helper.service'],
      { cwd: s.dir, encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stderr.trim(), '');
    assert.is(r.stdout.trim(), '');
  } finally {
    s.done();
    checkout.done();
  }
});

test('systemd reads ExecStart back as exactly node and the main, even with odd characters', () => {
  const checkout = fakeCheckout();
  const s = scratch('units');
  try {
    // `systemd-analyze dump` needs a running manager; `verify` names a missing executable as it
    // read it, which shows how the quoted word came back.
    const missingNode = join(checkout.dir, 'my 100% $node');
    writeFileSync(join(s.dir, 'xkvm-helper.service'),
      renderServiceUnit({ paths: DEFAULT_PATHS, nodePath: missingNode, helperMain: checkout.main, protectHome: 'yes' }));
    writeFileSync(join(s.dir, 'xkvm-helper.socket'), renderSocketUnit(DEFAULT_PATHS));
    const r = spawnSync('systemd-analyze', ['verify', './xkvm-helper.socket', './xkvm-helper.service'],
      { cwd: s.dir, encoding: 'utf8' });
    assert.ok(r.stderr.includes(`Command ${missingNode} is not executable`), r.stderr);
  } finally {
    s.done();
    checkout.done();
  }
});

test('a node path systemd would refuse as an executable name is refused first', async () => {
  const err = await installError(() => renderServiceUnit({
    paths: DEFAULT_PATHS, nodePath: '/opt/"node"', helperMain: MAIN, protectHome: 'yes',
  }));
  assert.is(err.code, 'INSTALL_BAD_PATH');
});

test.run();
