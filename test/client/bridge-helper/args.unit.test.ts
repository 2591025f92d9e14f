// xkvm-bridge-helper's arguments: qemu's order and libvirt's order both work, each option at
// most once, --br and --fd required, anything else refused with the usage line.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { parseBridgeHelperArgs } from '../../../client/src/bridge-helper/args.js';
import { ClientError } from '../../../client/src/errors.js';

function refused(argv: string[], pattern: RegExp): void {
  try {
    parseBridgeHelperArgs(argv);
  } catch (error) {
    assert.instance(error, ClientError);
    assert.match((error as Error).message, pattern, argv.join(' '));
    assert.match((error as Error).message, /usage: xkvm-bridge-helper \[--use-vnet\] --br=BRIDGE --fd=N/);
    return;
  }
  assert.unreachable(`accepted: ${argv.join(' ')}`);
}

test("qemu's order (--use-vnet --fd=N --br=BR) and libvirt's (--br=BR --fd=N, --use-vnet optional) are read alike", () => {
  assert.equal(parseBridgeHelperArgs(['--use-vnet', '--fd=8', '--br=br0']), { bridge: 'br0', fd: 8, useVnet: true });
  assert.equal(parseBridgeHelperArgs(['--use-vnet', '--br=br0', '--fd=8']), { bridge: 'br0', fd: 8, useVnet: true });
  assert.equal(parseBridgeHelperArgs(['--br=virbr0', '--fd=23']), { bridge: 'virbr0', fd: 23, useVnet: false });
  assert.equal(parseBridgeHelperArgs(['--fd=0', '--br=b']), { bridge: 'b', fd: 0, useVnet: false });
});

test('anything but the three options is refused, naming it', () => {
  refused(['--br=br0', '--fd=3', '--help'], /unknown argument '--help'/);
  refused(['--br=br0', '--fd=3', 'extra'], /unknown argument 'extra'/);
  refused(['--br', 'br0', '--fd=3'], /--br= must name a bridge/);
  refused(['--bridge=br0', '--fd=3'], /unknown argument '--bridge=br0'/);
  refused(['--use-vnet=1', '--br=br0', '--fd=3'], /--use-vnet takes no value/);
});

test('an option given twice is refused', () => {
  refused(['--br=br0', '--br=br1', '--fd=3'], /--br given twice/);
  refused(['--br=br0', '--fd=3', '--fd=4'], /--fd given twice/);
  refused(['--use-vnet', '--use-vnet', '--br=br0', '--fd=3'], /--use-vnet given twice/);
});

test('--br and --fd are required; the bridge must be an interface name and N a decimal fd number', () => {
  refused(['--fd=3'], /--br=BRIDGE is missing/);
  refused(['--br=br0'], /--fd=N is missing/);
  refused([], /--br=BRIDGE is missing/);
  for (const bad of ['', 'a/b', 'x'.repeat(16), 'a b', '..']) refused([`--br=${bad}`, '--fd=3'], /--br= must name a bridge/);
  for (const bad of ['', '-1', '03', '3x', '0x3', ' 3', '2147483648', '99999999999']) refused(['--br=br0', `--fd=${bad}`], /--fd= must be a file descriptor number/);
  assert.is(parseBridgeHelperArgs(['--br=br0', '--fd=2147483647']).fd, 2147483647);
});

test.run();
