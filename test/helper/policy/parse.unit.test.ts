import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { loadPolicy } from '../../../helper/src/policy/parse.js';
import { acceptAnyFile, CONF, parse, policyError, tempDir } from './support.js';

test('comments, blank lines and trailing comments are ignored', () => {
  const policy = parse('# a comment\n\n   \n\t# indented comment\nallow br0 alice # who may\n');
  assert.is(policy.directives.length, 1);
  assert.equal(policy.access[0]?.source, { file: CONF, line: 5, text: 'allow br0 alice' });
});

test('allow and deny keep the bridge, every WHO and the source line', () => {
  const policy = parse('allow br0 alice @kvm *\ndeny\t*\tbob\n');
  assert.equal(policy.access.map((r) => [r.kind, r.bridge, r.who]), [
    ['allow', 'br0', [{ kind: 'user', name: 'alice' }, { kind: 'group', name: 'kvm' }, { kind: 'anyone' }]],
    ['deny', '*', [{ kind: 'user', name: 'bob' }]],
  ]);
  assert.equal(policy.access[1]?.source, { file: CONF, line: 2, text: 'deny\t*\tbob' });
});

test('user names of the directory kind (dots, @domain, $) are accepted', () => {
  const policy = parse('allow br0 j.doe alice@example.com host$ @domain_users\n');
  assert.is(policy.access[0]?.who.length, 4);
});

test('max-taps without WHO sets the default, with WHO sets per-user and per-group limits', () => {
  const policy = parse('max-taps 8\nmax-taps 2 alice @students\nmax-taps 0 mallory\n');
  assert.is(policy.defaultMaxTaps?.value, 8);
  assert.is(policy.defaultMaxTaps?.source.line, 1);
  assert.is(policy.userMaxTaps.get('alice')?.value, 2);
  assert.is(policy.userMaxTaps.get('mallory')?.value, 0);
  assert.is(policy.groupMaxTaps.get('students')?.source.line, 2);
});

test('max-taps N * sets the default like max-taps N', () => {
  assert.is(parse('max-taps 3 *\n').defaultMaxTaps?.value, 3);
});

test('max-taps 4096 is the largest accepted', () => {
  assert.is(parse('max-taps 4096\n').defaultMaxTaps?.value, 4096);
});

test('max-connections sets a default, per-user and per-group limits like max-taps, from 0 to 1024', () => {
  const policy = parse('max-connections 4\nmax-connections 32 alice @ci\nmax-connections 1024 build\n');
  assert.is(policy.defaultMaxConnections?.value, 4);
  assert.is(policy.userMaxConnections.get('alice')?.value, 32);
  assert.is(policy.userMaxConnections.get('build')?.value, 1024);
  assert.is(policy.groupMaxConnections.get('ci')?.source.line, 2);
  assert.is(parse('max-connections 0 *\n').defaultMaxConnections?.value, 0);
  // the two limits are apart: one does not set the other
  assert.is(policy.defaultMaxTaps, undefined);
  assert.is(parse('max-taps 3\n').defaultMaxConnections, undefined);
});

test('max-connections beyond 1024, without a number, or set twice for one user is an error naming the line', () => {
  assert.is(policyError(() => parse('max-connections 1025\n')).message,
    `${CONF}:1: 1025 is too large; expected a whole number of connections from 0 to 1024`);
  assert.match(policyError(() => parse('max-connections\n')).message, /max-connections needs a number; expected max-connections N \[WHO\.\.\.\]/);
  assert.match(policyError(() => parse('max-connections 2 bob\nmax-connections 3 bob\n')).message,
    new RegExp(`${CONF}:2: max-connections for user bob is already set at ${CONF}:1`));
  assert.match(policyError(() => parse('max-connections 2\nmax-connections 3 *\n')).message, /the default max-connections is already set/);
});

test('ovsdb takes a unix socket path or tcp address', () => {
  assert.is(parse('ovsdb unix:/run/openvswitch/db.sock\n').ovsdb?.value, 'unix:/run/openvswitch/db.sock');
  assert.is(parse('ovsdb tcp:127.0.0.1:6640\n').ovsdb?.value, 'tcp:127.0.0.1:6640');
  assert.is(parse('ovsdb tcp:[::1]:6640\n').ovsdb?.value, 'tcp:[::1]:6640');
});

test('audit-log takes an absolute path', () => {
  const policy = parse('audit-log /var/log/xkvm/audit.log # one JSON object a line\n');
  assert.equal(policy.auditLog, {
    value: '/var/log/xkvm/audit.log',
    source: { file: CONF, line: 1, text: 'audit-log /var/log/xkvm/audit.log' },
  });
});

test('CRLF line ends and a byte order mark are tolerated', () => {
  const policy = parse('\uFEFFallow br0 alice\r\ndeny br0 bob\r\n');
  assert.equal(policy.access.map((r) => r.source.text), ['allow br0 alice', 'deny br0 bob']);
});

test('an empty policy has no rules and the built-in defaults', () => {
  const policy = parse('');
  assert.is(policy.access.length, 0);
  assert.is(policy.defaultMaxTaps, undefined);
  assert.is(policy.ovsdb, undefined);
  assert.is(policy.auditLog, undefined);
});

const errors: [string, string, string][] = [
  ['an unknown directive', '# ok\nalow br0 alice\n',
    `${CONF}:2: unknown directive "alow"; expected one of allow, deny, max-taps, max-connections, max-queues, vlan, mac-lock, ovsdb, audit-log, include (or a # comment)`],
  ['directives are case-sensitive', 'Allow br0 alice\n', `${CONF}:1: unknown directive "Allow"; expected`],
  ['allow without a bridge', '\n\nallow\n',
    `${CONF}:3: allow needs a bridge and at least one WHO; expected allow BRIDGE WHO... (WHO: a user name, @group or *)`],
  ['allow without WHO', 'allow br0\n', `${CONF}:1: allow br0 names no one; expected allow BRIDGE WHO...`],
  ['deny without WHO', 'deny br0 # nobody\n', `${CONF}:1: deny br0 names no one; expected deny BRIDGE WHO...`],
  ['a bridge name too long', 'allow abcdefghijklmnop alice\n',
    `${CONF}:1: bad bridge name "abcdefghijklmnop": it is 16 bytes long (at most 15); expected a bridge name (`],
  ['a bridge name starting with -', 'allow -br0 alice\n', `${CONF}:1: bad bridge name "-br0": it must be`],
  ['a bridge name with a slash', 'deny br/0 alice\n', `${CONF}:1: bad bridge name "br/0"`],
  ['a bad user name', 'allow br0 al!ce\n', `${CONF}:1: bad user name "al!ce"; expected a user name, @group or *`],
  ['a user name starting with -', 'allow br0 -alice\n', `${CONF}:1: bad user name "-alice"`],
  ['a numeric user', 'allow br0 1000\n', `${CONF}:1: user "1000" is a number (policy lines name users, not ids); expected`],
  ['an empty group', 'allow br0 @\n', `${CONF}:1: empty group name; expected a user name, @group or *`],
  ['a bad group name', 'allow br0 @k+vm\n', `${CONF}:1: bad group name "k+vm"; expected`],
  ['a comment glued to a word', 'allow br0 alice#note\n',
    `${CONF}:1: bad user name "alice#note" (a comment needs a space or tab before #); expected`],
  ['max-taps without N', 'max-taps\n', `${CONF}:1: max-taps needs a number; expected max-taps N [WHO...]`],
  ['a non-integer N', 'max-taps 2.5 alice\n',
    `${CONF}:1: "2.5" is not a whole number; expected a whole number of taps from 0 to 4096`],
  ['a negative N', 'max-taps -1\n', `${CONF}:1: "-1" is not a whole number; expected`],
  ['an N with a leading zero', 'max-taps 010\n', `${CONF}:1: "010" is not a whole number; expected`],
  ['a name where N belongs', 'max-taps alice 4\n', `${CONF}:1: "alice" is not a whole number; expected`],
  ['N over the limit', 'max-taps 4097\n', `${CONF}:1: 4097 is too large; expected a whole number of taps from 0 to 4096`],
  ['a bad WHO after max-taps', 'max-taps 4 @\n', `${CONF}:1: empty group name; expected`],
  ['ovsdb without a socket', 'ovsdb\n', `${CONF}:1: ovsdb needs a socket; expected ovsdb SOCKET`],
  ['ovsdb with a relative path', 'ovsdb unix:db.sock\n',
    `${CONF}:1: "unix:db.sock" does not name an absolute socket path; expected unix:/ABSOLUTE/PATH or tcp:IP:PORT`],
  ['ovsdb with a bare path', 'ovsdb /run/openvswitch/db.sock\n', `${CONF}:1: "/run/openvswitch/db.sock" is not a database socket; expected`],
  ['ovsdb over ssl', 'ovsdb ssl:10.0.0.1:6640\n', `${CONF}:1: "ssl:10.0.0.1:6640" is not a database socket`],
  ['ovsdb with a bad port', 'ovsdb tcp:127.0.0.1:70000\n', `${CONF}:1: "tcp:127.0.0.1:70000" is not a valid IP address and port`],
  ['ovsdb with a host name', 'ovsdb tcp:ovs.example:6640\n', `${CONF}:1: "tcp:ovs.example:6640" is not a valid IP address and port`],
  ['ovsdb with several databases', 'ovsdb unix:/a,unix:/b\n', `${CONF}:1: "unix:/a,unix:/b" lists several databases`],
  ['trailing garbage after ovsdb', 'ovsdb unix:/run/openvswitch/db.sock extra\n',
    `${CONF}:1: unexpected "extra" after the socket; expected ovsdb SOCKET and nothing else (a comment starts with " #")`],
  ['a second ovsdb', 'ovsdb unix:/a.sock\n# again\novsdb unix:/b.sock\n',
    `${CONF}:3: ovsdb is already set at ${CONF}:1; expected one ovsdb line in all the policy files`],
  ['audit-log without a path', 'audit-log\n', `${CONF}:1: audit-log needs a path; expected audit-log PATH`],
  ['a relative audit-log', 'audit-log audit.log\n',
    `${CONF}:1: "audit.log" is not an absolute path; expected an absolute file path`],
  ['an audit-log directory', 'audit-log /var/log/\n', `${CONF}:1: "/var/log/" names a directory; expected`],
  ['trailing garbage after audit-log', 'audit-log /var/log/a b\n', `${CONF}:1: unexpected "b" after the path; expected audit-log PATH and nothing else`],
  ['a second audit-log', 'audit-log /a\naudit-log /b\n', `${CONF}:2: audit-log is already set at ${CONF}:1; expected one audit-log line`],
  ['include without a path', 'include\n', `${CONF}:1: include needs a path; expected include PATH`],
  ['trailing garbage after include', 'include a.conf b.conf\n', `${CONF}:1: unexpected "b.conf" after the path; expected include PATH and nothing else`],
  ['a second default max-taps', 'max-taps 4\nmax-taps 5 *\n',
    `${CONF}:2: the default max-taps is already set at ${CONF}:1; expected one max-taps line without WHO (or with *)`],
  ['a second max-taps for a user', 'max-taps 4 alice\nmax-taps 5 bob alice\n',
    `${CONF}:2: max-taps for user alice is already set at ${CONF}:1; expected one max-taps line per user`],
  ['a second max-taps for a group', 'max-taps 4 @kvm\n\nmax-taps 5 @kvm\n',
    `${CONF}:3: max-taps for group @kvm is already set at ${CONF}:1; expected one max-taps line per group`],
  ['max-queues without N', 'max-queues\n', `${CONF}:1: max-queues needs a number; expected max-queues N [WHO...] (N from 1 to 16)`],
  ['max-queues 0', 'max-queues 0\n', `${CONF}:1: 0 is too small; expected a whole number of queues from 1 to 16`],
  ['max-queues 17', 'max-queues 17 alice\n', `${CONF}:1: 17 is too large; expected a whole number of queues from 1 to 16`],
  ['a second max-queues for a group', 'max-queues 4 @kvm\nmax-queues 2 @kvm\n',
    `${CONF}:2: max-queues for group @kvm is already set at ${CONF}:1; expected one max-queues line per group`],
  ['vlan without a VID', 'vlan br0\n', `${CONF}:1: vlan needs a bridge, a VLAN id and at least one WHO; expected vlan BRIDGE VID WHO...`],
  ['vlan without WHO', 'vlan br0 10\n', `${CONF}:1: vlan br0 10 names no one; expected vlan BRIDGE VID WHO...`],
  ['vlan 0', 'vlan br0 0 alice\n', `${CONF}:1: "0" is not a VLAN id; expected a VLAN id from 1 to 4094`],
  ['vlan 4095', 'vlan br0 4095 alice\n', `${CONF}:1: "4095" is not a VLAN id; expected a VLAN id from 1 to 4094`],
  ['a VID with a leading zero', 'vlan br0 010 alice\n', `${CONF}:1: "010" is not a VLAN id; expected`],
  ['a name where the VID belongs', 'vlan br0 alice 10\n', `${CONF}:1: "alice" is not a VLAN id; expected`],
  ['vlan on every bridge', 'vlan * 10 alice\n', `${CONF}:1: vlan needs one bridge, not * (VLAN ids are per bridge); expected vlan BRIDGE VID WHO...`],
  ['vlan with a bad bridge', 'vlan -br0 10 alice\n', `${CONF}:1: bad bridge name "-br0"`],
  ['vlan with a bad WHO', 'vlan br0 10 @\n', `${CONF}:1: empty group name; expected`],
  ['two VLANs for one user on one bridge', 'vlan br0 10 alice\n# again\nvlan br0 11 bob alice\n',
    `${CONF}:3: user alice on br0 already has VLAN 10 at ${CONF}:1; expected one VLAN for each user, group or * on one bridge`],
  ['two VLANs for one group on one bridge', 'vlan br0 10 @kvm\nvlan br0 11 @kvm\n',
    `${CONF}:2: group @kvm on br0 already has VLAN 10 at ${CONF}:1; expected one VLAN`],
  ['two VLANs for * on one bridge', 'vlan br0 10 *\nvlan br0 11 *\n', `${CONF}:2: * on br0 already has VLAN 10 at ${CONF}:1; expected one VLAN`],
  ['mac-lock without a bridge', 'mac-lock\n', `${CONF}:1: mac-lock needs a bridge and at least one WHO; expected mac-lock BRIDGE WHO...`],
  ['mac-lock without WHO', 'mac-lock br0\n', `${CONF}:1: mac-lock br0 names no one; expected mac-lock BRIDGE WHO...`],
  ['mac-lock with a bad bridge', 'mac-lock br/0 alice\n', `${CONF}:1: bad bridge name "br/0"`],
  ['a control character', 'allow br0 alice\u0007\n', `${CONF}:1: control character \\x07 at column 16; expected printable text`],
];

for (const [what, text, message] of errors) {
  test(`${what} is a syntax error naming file, line and what was expected`, () => {
    const err = policyError(() => parse(text));
    assert.is(err.code, 'POLICY_SYNTAX');
    assert.ok(err.message.startsWith(message), `message was: ${err.message}`);
    assert.ok(err.message.includes('; expected '), err.message);
    assert.is(err.file, CONF);
    assert.is(err.line, Number(/:(\d+):/.exec(message)?.[1]));
  });
}

test('vlan, mac-lock and max-queues keep their values, every WHO and their lines', () => {
  const policy = parse('vlan br0 10 alice @kvm\nvlan ovsbr0 4094 *\nmac-lock * @students\nmac-lock br0 bob\nmax-queues 4\nmax-queues 16 alice\nmax-queues 1 @ci\n');
  assert.equal(policy.vlans.map((v) => [v.bridge, v.vid, v.who, v.source.line]), [
    ['br0', 10, [{ kind: 'user', name: 'alice' }, { kind: 'group', name: 'kvm' }], 1],
    ['ovsbr0', 4094, [{ kind: 'anyone' }], 2],
  ]);
  assert.equal(policy.macLocks.map((m) => [m.bridge, m.who, m.source.line]), [
    ['*', [{ kind: 'group', name: 'students' }], 3],
    ['br0', [{ kind: 'user', name: 'bob' }], 4],
  ]);
  assert.is(policy.defaultMaxQueues?.value, 4);
  assert.is(policy.userMaxQueues.get('alice')?.value, 16);
  assert.is(policy.groupMaxQueues.get('ci')?.source.line, 7);
  // the limits are apart: max-queues sets neither max-taps nor max-connections
  assert.is(policy.defaultMaxTaps, undefined);
  assert.is(policy.defaultMaxConnections, undefined);
});

test('the same VLAN twice for one WHO, or different VLANs on different bridges or for different WHO, is no conflict', () => {
  const policy = parse('vlan br0 10 alice\nvlan br0 10 alice @kvm\nvlan br1 11 alice\nvlan br0 12 bob @ci *\n');
  assert.is(policy.vlans.length, 4);
});

test('a vlan conflict across files is an error at the second line, naming the first in the other file', () => {
  const t = tempDir({ 'main.conf': 'vlan br0 10 @kvm\ninclude extra.conf\n', 'extra.conf': '# extra\nvlan br0 20 @kvm\n' });
  try {
    const err = policyError(() => loadPolicy(t.path('main.conf'), { checkFile: acceptAnyFile }));
    assert.is(err.file, t.path('extra.conf'));
    assert.is(err.line, 2);
    assert.ok(err.message.startsWith(`${t.path('extra.conf')}:2: group @kvm on br0 already has VLAN 10 at ${t.path('main.conf')}:1; expected`), err.message);
  } finally {
    t.done();
  }
});

test('the same user twice on one max-taps line is not a duplicate', () => {
  assert.is(parse('max-taps 4 alice alice\n').userMaxTaps.get('alice')?.value, 4);
});

test.run();
