import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { DEFAULT_CONFIG, DEFAULT_CONFIG_NO_AUDIT_LOG } from '../../../helper/src/install/config.js';
import { DEFAULT_PATHS } from '../../../helper/src/install/paths.js';
import { checkPolicy } from '../../../helper/src/policy/check.js';
import { parsePolicyText } from '../../../helper/src/policy/parse.js';
import { acceptAnyFile } from '../policy/support.js';

const policy = () => parsePolicyText(DEFAULT_CONFIG, '/etc/xkvm/helper.conf', { checkFile: acceptAnyFile });

test('the default helper.conf parses and holds one directive: audit-log /var/log/xkvm/audit.log, in the folder install makes', () => {
  const parsed = policy();
  assert.is(parsed.directives.length, 1);
  assert.is(parsed.auditLog?.value, '/var/log/xkvm/audit.log');
  assert.is(parsed.auditLog?.value, `${DEFAULT_PATHS.logDir}/audit.log`);
});

test('the default helper.conf denies everyone every bridge', () => {
  const result = checkPolicy(policy(), { name: 'root', uid: 0, groups: ['root', 'kvm'] }, 'br0');
  assert.is(result.decision.allowed, false);
});

test('every example line in the default helper.conf parses once uncommented', () => {
  const lines = DEFAULT_CONFIG.split('\n');
  const start = lines.indexOf('# Examples:') + 1;
  const end = lines.indexOf('#', start);
  const examples = lines.slice(start, end).map((l) => l.slice(4).replace(/\s{2,}.*$/, ''));
  assert.ok(examples.length >= 5, examples.join('\n'));
  const parsed = parsePolicyText(`${examples.join('\n')}\n`, '/etc/xkvm/helper.conf', { checkFile: acceptAnyFile });
  assert.is(parsed.directives.length, examples.length);
});

test('the default helper.conf is plain ASCII', () => {
  assert.ok(/^[\x20-\x7e\n]*$/.test(DEFAULT_CONFIG));
  assert.ok(/^[\x20-\x7e\n]*$/.test(DEFAULT_CONFIG_NO_AUDIT_LOG));
});

test('the variant for a host whose log folders users may change has no directive at all, says why, and differs only there', () => {
  const parsed = parsePolicyText(DEFAULT_CONFIG_NO_AUDIT_LOG, '/etc/xkvm/helper.conf', { checkFile: acceptAnyFile });
  assert.is(parsed.directives.length, 0);
  assert.ok(DEFAULT_CONFIG_NO_AUDIT_LOG.includes('#   audit-log /var/log/xkvm/audit.log\n'));
  assert.match(DEFAULT_CONFIG_NO_AUDIT_LOG, /can be changed by users other than root/);
  const [a, b] = [DEFAULT_CONFIG.split('\n'), DEFAULT_CONFIG_NO_AUDIT_LOG.split('\n')];
  assert.equal(a.slice(0, 6), b.slice(0, 6));
  const rest = (lines: string[]): string[] => lines.slice(lines.indexOf('# One directive a line. A # starts a comment at the start of a line or after a space.'));
  assert.ok(rest(a).length > 20);
  assert.equal(rest(a), rest(b));
});

test.run();
