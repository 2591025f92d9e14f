import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { parseNetdevAsk } from '../../../client/src/doctor/bridges.js';
import { kvmFinding, vhostFinding } from '../../../client/src/doctor/devices.js';
import { formatFinding } from '../../../client/src/doctor/finding.js';
import { parseAnswer } from '../../../client/src/doctor/policy.js';

const dir = mkdtempSync(join(tmpdir(), 'xkvm-doctor-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('a device that opens is fine; one that is missing or cannot be opened is a warning with a fix (KVM missing means TCG, not failure)', () => {
  const file = join(dir, 'kvm');
  writeFileSync(file, '');
  assert.equal(kvmFinding(file).level, 'ok');
  const missing = kvmFinding(join(dir, 'nope'));
  assert.is(missing.level, 'warn');
  assert.match(missing.text, 'does not exist: VMs run under TCG');
  assert.match(missing.fix ?? '', 'kvm_intel or kvm_amd');
  const closed = kvmFinding(dir); // a directory: EISDIR for root and users alike
  assert.is(closed.level, 'warn');
  assert.match(closed.text, 'cannot be opened by you (EISDIR)');
  assert.ok(closed.fix !== undefined);
});

test('vhost-net is a failure only when a netdev asks for vhost=on', () => {
  assert.is(vhostFinding(false, join(dir, 'nope')).level, 'warn');
  const needed = vhostFinding(true, join(dir, 'nope'));
  assert.is(needed.level, 'fail');
  assert.match(needed.fix ?? '', 'or drop vhost=on');
});

test('netdevs are read for what doctor checks: the bridge, queues, whether the MAC is left to chance, vhost', () => {
  assert.equal(parseNetdevAsk('br0,queues=4,vhost=on'), { spec: 'br0,queues=4,vhost=on', connection: 'br0', queues: 4, autoMac: true, vhost: true });
  assert.is(parseNetdevAsk('br0,mac=52:54:00:12:34:56').autoMac, false);
  assert.is(parseNetdevAsk('br0,mac=auto').autoMac, true);
  assert.is(parseNetdevAsk('user').connection, 'user');
  assert.throws(() => parseNetdevAsk('br0,queues=17'), /queues= must be a whole number from 1 to 16/);
  assert.throws(() => parseNetdevAsk('-x'), /must be 'user' or a bridge name/);
  assert.throws(() => parseNetdevAsk(''), /must be 'user' or a bridge name/);
});

test('the helper\'s answer is read strictly: a field missing or of the wrong kind is an error, not a guess', () => {
  const good = { allowed: true, rule: 'f:1: allow br0 a', reason: 'r', maxTaps: 4, maxQueues: 8, vlan: null, vlanConflict: null, macLock: null, extra: 1 };
  assert.is(parseAnswer(JSON.stringify(good)).maxTaps, 4);
  assert.throws(() => parseAnswer('ALLOW: yes'), /did not answer in JSON/);
  assert.throws(() => parseAnswer(JSON.stringify({ ...good, allowed: 'yes' })), /no valid allowed/);
  assert.throws(() => parseAnswer(JSON.stringify({ ...good, maxTaps: 1.5 })), /no valid maxTaps/);
  assert.throws(() => parseAnswer('null'), /no valid allowed/);
});

test('a finding is one escaped line: a bridge or user name cannot move the cursor', () => {
  assert.is(formatFinding({ level: 'fail', subject: 'br0', text: 'refused', fix: 'ask' }), 'FAIL br0: refused; fix: ask');
  assert.is(formatFinding({ level: 'ok', subject: 'kvm', text: 'fine' }), 'ok   kvm: fine');
  assert.not.match(formatFinding({ level: 'warn', subject: 'x', text: 'a\u001b[2Jb\nc' }), /[\u0000-\u001f]/);
});

test.run();
