import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { loadPolicy } from '../../../helper/src/policy/parse.js';
import { renderPolicy } from '../../../helper/src/policy/show.js';
import { acceptAnyFile, CONF, parse, tempDir } from './support.js';

const TAIL = [
  '',
  '# how the lines combine',
  '# a bridge no allow line names for a user is denied (default deny); bridge names match exactly or *',
  '# a matching deny line beats every allow line, whatever the order',
  "# max-taps, max-connections, max-queues: the user's own line, else the largest of their groups' lines, else the default",
  "# vlan: a line naming the user beats their groups' lines, which beat * lines; vlan and mac-lock grant nothing (allow and deny decide)",
  "# mac-lock: any matching line locks; a request on that bridge must then carry the guest's MAC",
];

test('show lists every directive with its file:line and states the defaults', () => {
  const text = renderPolicy(parse('# c\nallow br0 alice @kvm   # note\n\ndeny * mallory\n'));
  assert.is(text, [
    `# policy ${CONF} (1 file)`,
    `${CONF}:2: allow br0 alice @kvm`,
    `${CONF}:4: deny * mallory`,
    '',
    '# in effect',
    'max-taps 16 (default)',
    'max-connections 16 (default)',
    'max-queues 8 (default)',
    "vlan: no lines (taps are on their bridge's default VLAN)",
    'mac-lock: no lines (taps may send from any MAC)',
    'ovsdb: not set (ovs-vsctl uses its own default database)',
    'audit-log: not set (audit records go to stderr only)',
    ...TAIL,
  ].join('\n') + '\n');
});

test('show states the settings a policy sets, with their lines', () => {
  const text = renderPolicy(parse([
    'max-taps 4', 'max-taps 1 alice', 'max-taps 8 @ci', 'ovsdb unix:/run/openvswitch/db.sock', 'audit-log /var/log/xkvm.log', '',
  ].join('\n')));
  assert.ok(text.includes([
    '# in effect',
    `max-taps 4 (default, set at ${CONF}:1)`,
    `max-taps 1 for alice (${CONF}:2)`,
    `max-taps 8 for @ci (${CONF}:3)`,
    'max-connections 16 (default)',
    'max-queues 8 (default)',
    "vlan: no lines (taps are on their bridge's default VLAN)",
    'mac-lock: no lines (taps may send from any MAC)',
    `ovsdb unix:/run/openvswitch/db.sock (${CONF}:4)`,
    `audit-log /var/log/xkvm.log (${CONF}:5)`,
  ].join('\n')), text);
});

test('show states max-connections lines like max-taps lines', () => {
  const text = renderPolicy(parse('max-connections 4\nmax-connections 64 ci\nmax-connections 32 @kvm\n'));
  assert.ok(text.includes([
    `max-connections 4 (default, set at ${CONF}:1)`,
    `max-connections 64 for ci (${CONF}:2)`,
    `max-connections 32 for @kvm (${CONF}:3)`,
  ].join('\n')), text);
});

test('show lists the max-queues, vlan and mac-lock lines in effect, each with its line', () => {
  const text = renderPolicy(parse([
    'allow br0 *', 'max-queues 4', 'max-queues 16 alice', 'max-queues 12 @kvm',
    'vlan br0 10 alice @kvm', 'vlan br0 20 *', 'mac-lock * @students', 'mac-lock br0 bob', '',
  ].join('\n')));
  assert.ok(text.includes([
    `${CONF}:5: vlan br0 10 alice @kvm`,
    `${CONF}:6: vlan br0 20 *`,
    `${CONF}:7: mac-lock * @students`,
  ].join('\n')), text);
  assert.ok(text.includes([
    `max-queues 4 (default, set at ${CONF}:2)`,
    `max-queues 16 for alice (${CONF}:3)`,
    `max-queues 12 for @kvm (${CONF}:4)`,
    `vlan 10 on br0 for alice @kvm (${CONF}:5)`,
    `vlan 20 on br0 for * (${CONF}:6)`,
    `mac-lock on * for @students (${CONF}:7)`,
    `mac-lock on br0 for bob (${CONF}:8)`,
    'ovsdb: not set',
  ].join('\n')), text);
});

test('show says when nothing is allowed', () => {
  const text = renderPolicy(parse('deny br0 bob\n'));
  assert.ok(text.includes('# no allow lines: every request is denied\n'), text);
  assert.ok(renderPolicy(parse('')).includes('# (no directives)\n'));
});

test('show expands includes in place, indented under the include line', () => {
  const t = tempDir({
    'main.conf': 'allow br0 alice\ninclude extra.conf\ndeny br0 bob\n',
    'extra.conf': '# extra\nallow br1 @kvm\ninclude more.conf\n',
    'more.conf': 'max-taps 2 @kvm\n',
  });
  try {
    const m = t.path('main.conf');
    const e = t.path('extra.conf');
    const text = renderPolicy(loadPolicy(m, { checkFile: acceptAnyFile }));
    assert.ok(text.startsWith([
      `# policy ${m} (3 files: ${m}, ${e}, ${t.path('more.conf')})`,
      `${m}:1: allow br0 alice`,
      `${m}:2: include extra.conf   # ${e}`,
      `  ${e}:2: allow br1 @kvm`,
      `  ${e}:3: include more.conf   # ${t.path('more.conf')}`,
      `    ${t.path('more.conf')}:1: max-taps 2 @kvm`,
      `${m}:3: deny br0 bob`,
      '',
    ].join('\n')), text);
  } finally {
    t.done();
  }
});

test.run();
