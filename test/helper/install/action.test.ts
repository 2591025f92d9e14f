import { spawnSync } from 'node:child_process';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ACTION_ID, readActionTemplate, renderAction } from '../../../helper/src/install/action.js';
import { installError } from './support.js';

interface ParsedAction {
  doctype: boolean;
  ids: string[];
  defaults: Record<string, string>;
  annotations: Record<string, string>;
  description: string;
  message: string;
}

/** Parse with a real XML parser (Python's expat, as node-gyp already needs Python) and pick fields. */
function parseAction(xml: string): ParsedAction {
  const script = [
    'import json, sys, xml.etree.ElementTree as ET',
    'data = sys.stdin.read()',
    'root = ET.fromstring(data.encode())',
    'a = root.findall("action")',
    'print(json.dumps({"doctype": "<!DOCTYPE policyconfig" in data, "ids": [x.get("id") for x in a],',
    '  "defaults": {d.tag: d.text for d in a[0].find("defaults")},',
    '  "annotations": {n.get("key"): n.text for n in a[0].findall("annotate")},',
    '  "description": a[0].findtext("description"), "message": a[0].findtext("message")}))',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input: xml, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`not well-formed XML: ${r.stderr}`);
  return JSON.parse(r.stdout) as ParsedAction;
}

const LAUNCHER = '/usr/local/libexec/xkvm/xkvm-helper';

test('the action file is well-formed XML with the polkit doctype and one action', () => {
  const parsed = parseAction(renderAction(readActionTemplate(), LAUNCHER));
  assert.ok(parsed.doctype);
  assert.equal(parsed.ids, [ACTION_ID]);
  assert.ok(parsed.description.length > 0 && parsed.message.length > 0);
});

test('the exec.path annotation is the launcher path and argv1 pins --stdio', () => {
  const parsed = parseAction(renderAction(readActionTemplate(), LAUNCHER));
  assert.equal(parsed.annotations, {
    'org.freedesktop.policykit.exec.path': LAUNCHER,
    'org.freedesktop.policykit.exec.argv1': '--stdio',
  });
});

test('without a rule nobody is authorised: remote and inactive no, active local needs an admin', () => {
  const parsed = parseAction(renderAction(readActionTemplate(), LAUNCHER));
  assert.equal(parsed.defaults, { allow_any: 'no', allow_inactive: 'no', allow_active: 'auth_admin' });
});

test('a launcher path with XML special characters is escaped, not injected', () => {
  const odd = '/opt/a&b/<x>/xkvm-helper';
  const parsed = parseAction(renderAction(readActionTemplate(), odd));
  assert.is(parsed.annotations['org.freedesktop.policykit.exec.path'], odd);
});

test('a template without the placeholder is refused', async () => {
  const err = await installError(() => renderAction('<policyconfig/>', LAUNCHER));
  assert.is(err.code, 'INSTALL_TEMPLATE');
});

test('a missing template file is refused with its path', async () => {
  const err = await installError(() => readActionTemplate('/nonexistent/org.xkvm.helper.policy.in'));
  assert.is(err.code, 'INSTALL_TEMPLATE');
  assert.match(err.message, /\/nonexistent\/org\.xkvm\.helper\.policy\.in/);
});

test.run();
