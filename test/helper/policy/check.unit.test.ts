import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { checkPolicy } from '../../../helper/src/policy/check.js';
import { alice, bob, CONF, parse } from './support.js';

const policy = parse([
  'allow br0 @kvm',
  'deny br0 bob',
  'allow br0 bob',
  'max-taps 4 @kvm',
  '',
].join('\n'));

test('check prints ALLOW, the deciding line, the groups considered and max-taps, and exits 0', () => {
  const r = checkPolicy(policy, alice, 'br0');
  assert.is(r.status, 0);
  assert.is(r.status, 0);
  assert.is(r.text, [
    'ALLOW: alice may put a tap on br0',
    `decided by: ${CONF}:1: allow br0 @kvm`,
    `reason: alice is allowed br0 as group @kvm by ${CONF}:1: allow br0 @kvm`,
    'user: alice (uid 1000); groups considered: alice, kvm',
    `max-taps: 4 (largest group line ${CONF}:4: max-taps 4 @kvm)`,
    'max-connections: 16 (default: no max-connections line applies)',
    'max-queues: 8 (default: no max-queues line applies)',
    "vlan: none (no vlan line names alice on br0: the bridge's default VLAN)",
    'mac-lock: no (no mac-lock line names alice on br0)',
  ].join('\n') + '\n');
});

test('check prints DENY with the deny line that beat an allow, and exits 1', () => {
  const r = checkPolicy(policy, bob, 'br0');
  assert.is(r.status, 1);
  assert.is(r.text, [
    'DENY: bob may not put a tap on br0',
    `decided by: ${CONF}:2: deny br0 bob`,
    `reason: bob is denied br0 as user bob by ${CONF}:2: deny br0 bob`,
    'user: bob (uid 1001); groups considered: bob, students',
    'max-taps: 16 (default: no max-taps line applies)',
    'max-connections: 16 (default: no max-connections line applies)',
    'max-queues: 8 (default: no max-queues line applies)',
    "vlan: none (no vlan line names bob on br0: the bridge's default VLAN)",
    'mac-lock: no (no mac-lock line names bob on br0)',
  ].join('\n') + '\n');
});

test('check reports a default deny as decided by no line', () => {
  const r = checkPolicy(policy, alice, 'br1');
  assert.is(r.status, 1);
  assert.ok(r.text.startsWith('DENY: alice may not put a tap on br1\ndecided by: no line (default deny)\n'
    + 'reason: no line allows alice on br1 (default deny)\n'), r.text);
});

test('check denies an invalid bridge name and prints it escaped', () => {
  const r = checkPolicy(policy, alice, 'br\u001b[0m');
  assert.is(r.status, 1);
  assert.ok(r.text.includes('decided by: no line (invalid bridge name)'), r.text);
  assert.not.ok(r.text.includes('\u001b'), r.text);
});

test('check shows the max-connections line that applies', () => {
  const r = checkPolicy(parse('allow br0 dave\nmax-connections 2 dave\nmax-connections 9\n'), { name: 'dave', uid: 5, groups: [] }, 'br0');
  assert.ok(r.text.includes(`max-connections: 2 (user line ${CONF}:2: max-connections 2 dave)\n`), r.text);
  assert.ok(checkPolicy(parse('max-connections 9\n'), alice, 'br0').text.includes(`max-connections: 9 (default line ${CONF}:1: max-connections 9)`));
});

test('check shows a user with no groups and a user max-taps line', () => {
  const r = checkPolicy(parse('allow br0 dave\nmax-taps 3 dave\nmax-taps 9\n'), { name: 'dave', uid: 5, groups: [] }, 'br0');
  assert.ok(r.text.includes('groups considered: (none)'), r.text);
  assert.ok(r.text.includes(`max-taps: 3 (user line ${CONF}:2: max-taps 3 dave)`), r.text);
  assert.is(checkPolicy(parse('max-taps 9\n'), alice, 'br0').limit.limit, 9);
  assert.ok(checkPolicy(parse('max-taps 9\n'), alice, 'br0').text.includes(`max-taps: 9 (default line ${CONF}:1: max-taps 9)`));
});


test('check explains the vlan, mac-lock and max-queues that apply to the user on the bridge, with their lines', () => {
  const p = parse([
    'allow br0 *', 'vlan br0 20 *', 'vlan br0 10 @kvm', 'vlan br1 30 alice', 'mac-lock * @kvm', 'max-queues 4 @kvm', 'max-queues 2', '',
  ].join('\n'));
  const a = checkPolicy(p, alice, 'br0');
  assert.is(a.status, 0);
  assert.ok(a.text.includes([
    `max-queues: 4 (largest group line ${CONF}:6: max-queues 4 @kvm)`,
    `vlan: 10 (group line ${CONF}:3: vlan br0 10 @kvm)`,
    `mac-lock: yes, requests must carry the guest's MAC (${CONF}:5: mac-lock * @kvm)`,
  ].join('\n') + '\n'), a.text);
  const b = checkPolicy(p, bob, 'br0');
  assert.ok(b.text.includes([
    `max-queues: 2 (default line ${CONF}:7: max-queues 2)`,
    `vlan: 20 (* line ${CONF}:2: vlan br0 20 *)`,
    'mac-lock: no (no mac-lock line names bob on br0)',
  ].join('\n') + '\n'), b.text);
  assert.ok(checkPolicy(p, alice, 'br1').text.includes(`vlan: 30 (user line ${CONF}:4: vlan br1 30 alice)\n`));
});

test('check says DENY and names both lines when two of the user\'s groups give different VLANs on the bridge', () => {
  const p = parse('allow br0 *\nvlan br0 10 @alice\nvlan br0 11 @kvm\n');
  const r = checkPolicy(p, alice, 'br0');
  assert.is(r.status, 1);
  assert.ok(r.text.startsWith('DENY: alice may not put a tap on br0\n'), r.text);
  assert.ok(r.text.includes(`vlan: CONFLICT: the policy gives alice two VLANs on br0: 10 by ${CONF}:2: vlan br0 10 @alice and 11 by ${CONF}:3: vlan br0 11 @kvm`), r.text);
  assert.is(checkPolicy(p, bob, 'br0').status, 0, 'bob is in neither group');
});

test('with the user\'s use known, check says how many taps are in use and how many are left; unknown, it says why', () => {
  assert.match(checkPolicy(policy, alice, 'br0', { held: 3 }).text, '\nmax-taps: 4 (largest group line ' );
  assert.match(checkPolicy(policy, alice, 'br0', { held: 3 }).text, '\ntaps: 3 of 4 in use, 1 left\n');
  assert.match(checkPolicy(policy, alice, 'br0', { held: 6 }).text, '\ntaps: 6 of 4 in use, 0 left\n');
  assert.match(checkPolicy(policy, alice, 'br0', { unknown: 'the ledger is root\'s' }).text, "\ntaps: unknown (the ledger is root's)\n");
  assert.not.match(checkPolicy(policy, alice, 'br0').text, '\ntaps:');
});

test.run();
