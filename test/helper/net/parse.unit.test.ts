// Parsing what ip and ovs-vsctl print, and the ovs-vsctl commands built for adding ports.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { parseFailedLines } from '../../../helper/src/net/ipbatch.js';
import { members, parseTables, strMap, uuid } from '../../../helper/src/net/ovsjson.js';
import { addPorts } from '../../../helper/src/net/ovsports.js';
import type { RunRequest, Runner } from '../../../helper/src/net/runner.js';
import { vsctl } from '../../../helper/src/net/vsctl.js';
import { NetError } from '../../../helper/src/net/errors.js';

/** A runner that records what it is asked to run and answers success. */
function recorder(): { run: Runner; calls: RunRequest[] } {
  const calls: RunRequest[] = [];
  return { run: async (req) => { calls.push(req); return { exitCode: 0, stdout: '', stderr: '' }; }, calls };
}

test('the failing line of an ip batch is read from "Command failed -:N"', () => {
  const stderr = 'ioctl(TUNSETIFF): Device or resource busy\nCommand failed -:3\n';
  assert.equal(parseFailedLines(stderr), [3]);
  assert.equal(parseFailedLines('Error: argument "br2" is wrong: Device does not exist\n'), []);
  assert.equal(parseFailedLines('Cannot find device "a"\nCommand failed -:1\nCannot find device "b"\nCommand failed -:4\n'), [1, 4]);
});

test('ovs-vsctl JSON output gives one table per command, with sets of one or many members', () => {
  const out = '{"data":[[["uuid","u1"],"tA",["map",[["xkvm-owner","1000"]]]]],"headings":["_uuid","name","external_ids"]}\n'
    + '{"data":[["ovsbr0",["set",[["uuid","u1"],["uuid","u2"]]]],["ovsbr1",["uuid","u3"]]],"headings":["name","ports"]}\n';
  const [ports, bridges] = parseTables(out);
  assert.is(ports?.length, 1);
  assert.is(uuid(ports?.[0]?.get('_uuid'), 'x'), 'u1');
  assert.equal([...strMap(ports?.[0]?.get('external_ids'), 'x')], [['xkvm-owner', '1000']]);
  assert.equal(members(bridges?.[0]?.get('ports')).map((m) => uuid(m, 'x')), ['u1', 'u2']);
  assert.equal(members(bridges?.[1]?.get('ports')).map((m) => uuid(m, 'x')), ['u3']);
  assert.equal(members(['set', []]), []);
});

test('output that is not what ovs-vsctl prints is a SYSTEM_ERROR, not a crash', () => {
  for (const bad of ['nope', '{"data":[]}', '{"headings":["a"],"data":[[1,2]]}', '[1]']) {
    assert.throws(() => parseTables(bad), (e: unknown) => e instanceof NetError && e.code === 'SYSTEM_ERROR');
  }
  assert.throws(() => strMap(['set', []], 'x'), (e: unknown) => e instanceof NetError);
});

test('ports are added with --may-exist and tagged with owner, session and other_config:transient=true, in one ovs-vsctl', async () => {
  const { run, calls } = recorder();
  await addPorts(run, undefined, [{ bridge: 'ovsbr0', tap: 'xkvmaaaaaaaa' }, { bridge: 'ovsbr1', tap: 'xkvmbbbbbbbb' }], 1000, 's-1');
  assert.equal(calls.map((c) => c.args), [[
    '--timeout=10',
    '--', '--may-exist', 'add-port', 'ovsbr0', 'xkvmaaaaaaaa',
    '--', 'set', 'Port', 'xkvmaaaaaaaa', 'external_ids:xkvm-owner=1000', 'external_ids:xkvm-session=s-1', 'other_config:transient=true',
    '--', '--may-exist', 'add-port', 'ovsbr1', 'xkvmbbbbbbbb',
    '--', 'set', 'Port', 'xkvmbbbbbbbb', 'external_ids:xkvm-owner=1000', 'external_ids:xkvm-session=s-1', 'other_config:transient=true',
  ]]);
  const untagged = recorder();
  await addPorts(untagged.run, undefined, [{ bridge: 'b', tap: 't' }], 7, undefined);
  assert.equal(untagged.calls.map((c) => c.args),
    [['--timeout=10', '--', '--may-exist', 'add-port', 'b', 't', '--', 'set', 'Port', 't', 'external_ids:xkvm-owner=7', 'other_config:transient=true']]);
});

test('a port with an MTU gets mtu_request on its Interface in the same transaction', async () => {
  const { run, calls } = recorder();
  await addPorts(run, undefined, [{ bridge: 'b', tap: 't', mtu: 9000 }, { bridge: 'c', tap: 'u' }], 7, undefined);
  assert.equal(calls.map((c) => c.args), [[
    '--timeout=10',
    '--', '--may-exist', 'add-port', 'b', 't', '--', 'set', 'Port', 't', 'external_ids:xkvm-owner=7', 'other_config:transient=true',
    '--', 'set', 'Interface', 't', 'mtu_request=9000',
    '--', '--may-exist', 'add-port', 'c', 'u', '--', 'set', 'Port', 'u', 'external_ids:xkvm-owner=7', 'other_config:transient=true',
  ]]);
});

test('ovs-vsctl (by absolute path) gets --db only when the policy names a database, and commands chained with --', async () => {
  const { run, calls } = recorder();
  await vsctl(run, undefined, [['list-br']]);
  await vsctl(run, 'unix:/run/openvswitch/db.sock', [['a'], ['b', 'c']], ['--format=json']);
  assert.equal(calls.map((c) => [c.file, ...c.args]), [
    ['/usr/bin/ovs-vsctl', '--timeout=10', '--', 'list-br'],
    ['/usr/bin/ovs-vsctl', '--db=unix:/run/openvswitch/db.sock', '--timeout=10', '--format=json', '--', 'a', '--', 'b', 'c'],
  ]);
});

test.run();
