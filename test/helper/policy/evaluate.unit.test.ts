import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { decide, macLocked, maxConnections, maxConnectionsCeiling, maxQueues, maxTaps, standing, vlanFor } from '../../../helper/src/policy/evaluate.js';
import { alice, bob, CONF, parse } from './support.js';

test('with no lines at all, everyone is denied and told no line allowed it', () => {
  const d = decide(parse(''), alice, 'br0');
  assert.is(d.allowed, false);
  assert.is(d.reason, 'no line allows alice on br0 (default deny)');
  assert.is(d.rule, undefined);
});

test('an allow line for the user allows and names its line', () => {
  const d = decide(parse('# x\nallow br0 alice\n'), alice, 'br0');
  assert.is(d.allowed, true);
  assert.equal(d.rule, { file: CONF, line: 2, text: 'allow br0 alice' });
  assert.is(d.reason, `alice is allowed br0 as user alice by ${CONF}:2: allow br0 alice`);
});

test('bridge names match exactly: an allow for br0 says nothing about br01 or br', () => {
  const policy = parse('allow br0 alice\n');
  assert.is(decide(policy, alice, 'br01').allowed, false);
  assert.is(decide(policy, alice, 'br').allowed, false);
  assert.is(decide(policy, alice, 'BR0').allowed, false);
});

test('an allow line for another user does not allow', () => {
  assert.is(decide(parse('allow br0 bob\n'), alice, 'br0').allowed, false);
});

test('@group allows members of the group only', () => {
  const policy = parse('allow br0 @kvm\n');
  const d = decide(policy, alice, 'br0');
  assert.is(d.allowed, true);
  assert.ok(d.reason.includes('as group @kvm'), d.reason);
  assert.is(decide(policy, bob, 'br0').allowed, false);
});

test('* as WHO allows anyone, * as BRIDGE allows every bridge', () => {
  assert.is(decide(parse('allow br0 *\n'), bob, 'br0').allowed, true);
  assert.is(decide(parse('allow br0 *\n'), bob, 'br1').allowed, false);
  const any = parse('allow * alice\n');
  assert.is(decide(any, alice, 'br0').allowed, true);
  assert.is(decide(any, alice, 'ovsbr7').allowed, true);
  assert.is(decide(any, bob, 'br0').allowed, false);
});

test('deny wins over an allow written before it', () => {
  const d = decide(parse('allow br0 alice\ndeny br0 alice\n'), alice, 'br0');
  assert.is(d.allowed, false);
  assert.is(d.rule?.line, 2);
  assert.is(d.reason, `alice is denied br0 as user alice by ${CONF}:2: deny br0 alice`);
});

test('deny wins over an allow written after it', () => {
  const d = decide(parse('deny br0 alice\nallow br0 alice\n'), alice, 'br0');
  assert.is(d.allowed, false);
  assert.is(d.rule?.line, 1);
});

test('a group deny beats a user allow, and a * deny beats everything on its bridge', () => {
  assert.is(decide(parse('allow br0 alice\ndeny br0 @kvm\n'), alice, 'br0').allowed, false);
  const policy = parse('allow * *\ndeny br9 *\n');
  assert.is(decide(policy, alice, 'br9').allowed, false);
  assert.is(decide(policy, alice, 'br0').allowed, true);
});

test('a deny * on every bridge for a user beats a specific allow', () => {
  const d = decide(parse('allow br0 bob\ndeny * bob\n'), bob, 'br0');
  assert.is(d.allowed, false);
  assert.is(d.rule?.text, 'deny * bob');
});

test('a deny for another bridge or user leaves an allow standing', () => {
  const policy = parse('deny br1 alice\ndeny br0 bob\nallow br0 alice\n');
  const d = decide(policy, alice, 'br0');
  assert.is(d.allowed, true);
  assert.is(d.rule?.line, 3);
});

test('among several matching allows the first line is named', () => {
  assert.is(decide(parse('allow br0 @kvm\nallow br0 alice\n'), alice, 'br0').rule?.line, 1);
});

test('an invalid bridge name is denied before any rule is looked at', () => {
  const d = decide(parse('allow * *\n'), alice, '../etc');
  assert.is(d.allowed, false);
  assert.is(d.rule, undefined);
  assert.ok(d.reason.startsWith('"../etc" is not a valid bridge name'), d.reason);
  assert.is(decide(parse('allow * *\n'), alice, '*').allowed, false);
});

test('max-taps is 16 when no line sets it', () => {
  assert.equal(maxTaps(parse(''), alice), { limit: 16, from: 'built-in' });
});

test('max-taps N without WHO replaces the default of 16', () => {
  const limit = maxTaps(parse('max-taps 4\n'), alice);
  assert.is(limit.limit, 4);
  assert.is(limit.from, 'default');
  assert.is(limit.rule?.line, 1);
});

test('a group max-taps beats the default, whatever the order', () => {
  assert.is(maxTaps(parse('max-taps 6 @kvm\nmax-taps 4\n'), alice).limit, 6);
  assert.is(maxTaps(parse('max-taps 4\nmax-taps 2 @kvm\n'), alice).limit, 2);
  assert.is(maxTaps(parse('max-taps 4\nmax-taps 2 @kvm\n'), bob).limit, 4);
});

test('a per-user max-taps beats group lines and the default, whatever the order', () => {
  const policy = parse('max-taps 1 alice\nmax-taps 64 @kvm\nmax-taps 32\n');
  assert.equal(maxTaps(policy, alice), { limit: 1, from: 'user', rule: { file: CONF, line: 1, text: 'max-taps 1 alice' } });
  assert.is(maxTaps(parse('max-taps 64 @kvm\nmax-taps 8 alice\n'), alice).limit, 8);
});

test('with several matching group lines the largest applies', () => {
  const user = { name: 'carol', uid: 1002, groups: ['carol', 'students', 'ci', 'kvm'] };
  const policy = parse('max-taps 2 @students\nmax-taps 32 @ci\nmax-taps 8 @kvm\nmax-taps 1\n');
  const limit = maxTaps(policy, user);
  assert.is(limit.limit, 32);
  assert.is(limit.from, 'group');
  assert.is(limit.rule?.text, 'max-taps 32 @ci');
});

test('on a tie between group lines the first line read is named', () => {
  const user = { name: 'carol', uid: 1002, groups: ['kvm', 'ci'] };
  assert.is(maxTaps(parse('max-taps 8 @ci\nmax-taps 8 @kvm\n'), user).rule?.text, 'max-taps 8 @ci');
});

test('max-taps 0 for a user is a limit of zero, not "unset"', () => {
  assert.is(maxTaps(parse('max-taps 0 alice\nmax-taps 8 @kvm\n'), alice).limit, 0);
});

test('standing: the first allow line naming the user (by name, group or *), whatever its bridge; deny lines and other users\' lines give none', () => {
  assert.is(standing(parse(''), alice), undefined);
  assert.is(standing(parse('allow br0 bob\ndeny br0 alice\nmax-taps 4 alice\n'), alice), undefined);
  assert.equal(standing(parse('allow br0 bob\nallow ovsbr0 @kvm\nallow br1 alice\n'), alice), { file: CONF, line: 2, text: 'allow ovsbr0 @kvm' });
  assert.equal(standing(parse('deny * alice\nallow * *\n'), alice)?.line, 2);
  assert.is(standing(parse('allow br0 @kvm\n'), bob), undefined);
});

test('max-connections is 16 when no line sets it, and a user line beats group lines, the largest of which beats the default', () => {
  assert.equal(maxConnections(parse(''), alice), { limit: 16, from: 'built-in' });
  assert.is(maxConnections(parse('max-connections 4\n'), alice).limit, 4);
  assert.is(maxConnections(parse('max-connections 4\nmax-connections 2 @kvm\nmax-connections 6 @alice\n'), alice).limit, 6);
  assert.equal(maxConnections(parse('max-connections 64 @kvm\nmax-connections 3 alice\n'), alice),
    { limit: 3, from: 'user', rule: { file: CONF, line: 2, text: 'max-connections 3 alice' } });
  // max-taps lines do not set it
  assert.is(maxConnections(parse('max-taps 2 alice\n'), alice).limit, 16);
});

test('the max-connections ceiling is the largest limit any user can have', () => {
  assert.is(maxConnectionsCeiling(parse('')), 16);
  assert.is(maxConnectionsCeiling(parse('max-connections 4\n')), 4);
  assert.is(maxConnectionsCeiling(parse('max-connections 4\nmax-connections 40 @ci\nmax-connections 8 bob\n')), 40);
  assert.is(maxConnectionsCeiling(parse('max-connections 2 alice\n')), 16);
});

test('max-queues is 8 when no line sets it; a user line beats group lines, the largest of which beats the default', () => {
  assert.equal(maxQueues(parse(''), alice), { limit: 8, from: 'built-in' });
  const p = parse('max-queues 2\nmax-queues 4 @kvm\nmax-queues 12 @alice\nmax-queues 1 alice\n');
  assert.equal([maxQueues(p, alice).limit, maxQueues(p, alice).from, maxQueues(p, alice).rule?.line], [1, 'user', 4]);
  const member = { ...alice, name: 'carol' };
  assert.equal([maxQueues(p, member).limit, maxQueues(p, member).from, maxQueues(p, member).rule?.line], [12, 'group', 3]);
  assert.equal([maxQueues(p, bob).limit, maxQueues(p, bob).from], [2, 'default']);
  // max-taps is apart
  assert.is(maxTaps(p, alice).limit, 16);
});

test('vlan: no line means no VLAN; a user line beats group lines, which beat * lines, whatever the order', () => {
  assert.is(vlanFor(parse('allow br0 *\n'), alice, 'br0'), undefined);
  const p = parse('vlan br0 30 *\nvlan br0 20 @kvm\nvlan br0 10 alice\nvlan br1 40 alice\n');
  assert.equal(vlanFor(p, alice, 'br0'), { vid: 10, from: 'user', rule: { file: CONF, line: 3, text: 'vlan br0 10 alice' } });
  assert.equal(vlanFor(p, { ...alice, name: 'carol' }, 'br0'), { vid: 20, from: 'group', rule: { file: CONF, line: 2, text: 'vlan br0 20 @kvm' } });
  assert.equal(vlanFor(p, bob, 'br0'), { vid: 30, from: 'anyone', rule: { file: CONF, line: 1, text: 'vlan br0 30 *' } });
  assert.is(vlanFor(p, bob, 'br1'), undefined, 'a vlan line is for its bridge only');
  assert.is(vlanFor(p, alice, 'br2'), undefined);
});

test('vlan: two lines for two of the user\'s groups that disagree are a conflict naming both; agreeing lines are not', () => {
  const p = parse('vlan br0 10 @alice\nvlan br0 10 @other\nvlan br0 11 @kvm\nvlan br0 12 bob\n');
  const v = vlanFor(p, alice, 'br0');
  assert.ok(v !== undefined && 'conflict' in v, JSON.stringify(v));
  if (v !== undefined && 'conflict' in v) {
    assert.equal(v.conflict.map((s) => s.line), [1, 3]);
    assert.is(v.reason, `the policy gives alice two VLANs on br0: 10 by ${CONF}:1: vlan br0 10 @alice and 11 by ${CONF}:3: vlan br0 11 @kvm`);
  }
  assert.equal(vlanFor(p, bob, 'br0'), { vid: 12, from: 'user', rule: { file: CONF, line: 4, text: 'vlan br0 12 bob' } }, 'a user line settles it above the groups');
  assert.equal(vlanFor(parse('vlan br0 10 @alice\nvlan br0 10 @kvm\n'), alice, 'br0'), { vid: 10, from: 'group', rule: { file: CONF, line: 1, text: 'vlan br0 10 @alice' } });
});

test('mac-lock: the first line naming the user (by name, group or *) on the bridge or on *; none for others', () => {
  const p = parse('mac-lock br1 *\nmac-lock * @kvm\nmac-lock br0 alice\n');
  assert.is(macLocked(p, alice, 'br0')?.line, 2);
  assert.is(macLocked(p, alice, 'br7')?.line, 2);
  assert.is(macLocked(p, bob, 'br1')?.line, 1);
  assert.is(macLocked(p, bob, 'br0'), undefined);
  assert.is(macLocked(parse('allow * *\n'), alice, 'br0'), undefined);
});

test('vlan and mac-lock lines grant nothing: without an allow line the user is still denied', () => {
  const p = parse('vlan br0 10 alice\nmac-lock br0 alice\nmax-queues 16 alice\n');
  assert.is(decide(p, alice, 'br0').allowed, false);
  assert.is(standing(p, alice), undefined);
});

test.run();
