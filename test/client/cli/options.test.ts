import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { parseLaunchOptions } from '../../../client/src/cli/options.js';
import { ClientError } from '../../../client/src/errors.js';

function usageError(argv: string[]): ClientError {
  let caught: unknown;
  try {
    parseLaunchOptions(argv);
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, ClientError, `${JSON.stringify(argv)} was not refused with a ClientError`);
  assert.is((caught as ClientError).code, 'USAGE');
  return caught as ClientError;
}

test('with no arguments every option has its default', () => {
  assert.equal(parseLaunchOptions([]), {
    help: false, netdevs: [], disks: [], dryRun: false, kvm: undefined, verbosity: 0, dowait: undefined,
    bios: undefined, uefi: false, uefiNvram: undefined, noReboot: false, passthrough: [],
  });
});

test('-h stops option processing where it stands: options before it count, options after it do not', () => {
  const opts = parseLaunchOptions(['-d', 'a.img', '-v', '-h', '-d', 'b.img', '--dry-run', '-v']);
  assert.is(opts.help, true);
  assert.equal(opts.disks, ['a.img']);
  assert.is(opts.verbosity, 1);
  assert.is(opts.dryRun, false);
});

test('--help after --bios and --uefi shows help instead of the conflict, as the reference does', () => {
  assert.is(parseLaunchOptions(['--bios', 'b.fd', '--uefi', '--help']).help, true);
});

test('-h does not hide a getopt error anywhere on the line (getopt runs over all of it first)', () => {
  assert.match(usageError(['-h', '--bogus']).message, /unrecognized option '--bogus'/);
});

test('--uefi-nvram implies --uefi and keeps the file', () => {
  const opts = parseLaunchOptions(['--uefi-nvram=vars.fd']);
  assert.is(opts.uefi, true);
  assert.is(opts.uefiNvram, 'vars.fd');
  assert.is(parseLaunchOptions(['--uefi-nvram', 'v2.fd']).uefiNvram, 'v2.fd');
});

test('an empty --uefi-nvram= is plain --uefi, as in the reference', () => {
  const opts = parseLaunchOptions(['--uefi-nvram=']);
  assert.is(opts.uefi, true);
  assert.is(opts.uefiNvram, undefined);
});

test('--bios together with --uefi or --uefi-nvram is an error naming both, in either order', () => {
  for (const argv of [['--bios', 'b.fd', '--uefi'], ['--uefi', '--bios', 'b.fd'], ['--uefi-nvram', 'v.fd', '--bios=b.fd']]) {
    const error = usageError(argv);
    assert.match(error.message, /--uefi/);
    assert.match(error.message, /--bios/);
  }
  assert.is(parseLaunchOptions(['--bios', 'b.fd']).bios, 'b.fd');
});

test('repeated -n/--netdev and -d/--disk keep their order, short and long forms mixed', () => {
  const opts = parseLaunchOptions(['-n', 'br0', '--disk', 'one.img', '--netdev=user', '-dtwo.img', '-nbr1,mac=:05', '--disk=three.img']);
  assert.equal(opts.netdevs, ['br0', 'user', 'br1,mac=:05']);
  assert.equal(opts.disks, ['one.img', 'two.img', 'three.img']);
});

test('-v counts every occurrence, clustered or long', () => {
  assert.is(parseLaunchOptions(['-vv', '-v', '--verbose', '--verb']).verbosity, 5);
});

test('--dowait and --no-dowait: the last one wins, unset by default', () => {
  assert.is(parseLaunchOptions(['--dowait']).dowait, true);
  assert.is(parseLaunchOptions(['--dowait', '--no-dowait']).dowait, false);
  assert.is(parseLaunchOptions(['--no-dowait', '--dowait']).dowait, true);
  assert.is(parseLaunchOptions(['--no']).dowait, false);
});

test('--dry-run, --kvm and --no-reboot are recorded', () => {
  const opts = parseLaunchOptions(['--dry-run', '--kvm', '/opt/qemu/bin/qemu-system-x86_64', '--no-reboot']);
  assert.is(opts.dryRun, true);
  assert.is(opts.kvm, '/opt/qemu/bin/qemu-system-x86_64');
  assert.is(opts.noReboot, true);
});

test('an empty --kvm is an error', () => {
  assert.match(usageError(['--kvm=']).message, /--kvm/);
});

test('non-options and everything after -- pass through to qemu in order', () => {
  const opts = parseLaunchOptions(['disk.img', '-n', 'user', '--', '-m', '512', '--', '-v']);
  assert.equal(opts.passthrough, ['disk.img', '-m', '512', '--', '-v']);
  assert.equal(opts.netdevs, ['user']);
  assert.is(opts.verbosity, 0);
});

test('a missing argument is a usage error', () => {
  assert.match(usageError(['--disk']).message, /requires an argument/);
  assert.match(usageError(['-n']).message, /requires an argument/);
});

test.run();
