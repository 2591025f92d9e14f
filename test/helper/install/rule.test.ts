import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ACTION_ID } from '../../../helper/src/install/action.js';
import { renderRule } from '../../../helper/src/install/rule.js';
import { REPO } from './support.js';

type Rule = (action: { id: string }, subject: { isInGroup(name: string): boolean }) => unknown;

/** Load a rules file the way polkitd does: as a script calling polkit.addRule. */
function loadRules(text: string): Rule[] {
  const rules: Rule[] = [];
  const polkit = {
    Result: { NO: 'no', YES: 'yes', AUTH_SELF: 'auth_self', AUTH_SELF_KEEP: 'auth_self_keep', AUTH_ADMIN: 'auth_admin', AUTH_ADMIN_KEEP: 'auth_admin_keep' },
    addRule: (f: Rule) => { rules.push(f); },
    addAdminRule: () => { throw new Error('no admin rules expected'); },
  };
  runInNewContext(text, { polkit });
  return rules;
}

function decide(text: string, actionId: string, groups: readonly string[]): unknown {
  const rules = loadRules(text);
  assert.is(rules.length, 1);
  return rules[0]?.({ id: actionId }, { isInGroup: (g) => groups.includes(g) });
}

test('the rule lets members of the group run the action', () => {
  assert.is(decide(renderRule('xkvm-users'), ACTION_ID, ['xkvm-users', 'other']), 'yes');
});

test('the rule says nothing for non-members, so polkit falls back to the action defaults', () => {
  assert.is(decide(renderRule('xkvm-users'), ACTION_ID, ['other']), undefined);
});

test('the rule says nothing about other actions, even for members', () => {
  assert.is(decide(renderRule('xkvm-users'), 'org.freedesktop.policykit.exec', ['xkvm-users']), undefined);
});

test('the rule names the group and the action in plain sight', () => {
  const text = renderRule('xkvm-users');
  assert.ok(text.includes('subject.isInGroup("xkvm-users")'), text);
  assert.ok(text.includes(`action.id == "${ACTION_ID}"`), text);
});

test('the rule is ECMAScript 5: no let, const or arrow functions', () => {
  const code = renderRule('kvm').replace(/\/\*[\s\S]*?\*\//g, '');
  assert.not.match(code, /\blet\b|\bconst\b|=>/);
});

test('the shipped example is the same rule for the group kvm', () => {
  const example = readFileSync(join(REPO, 'polkit/50-xkvm-helper.rules.example'), 'utf8');
  assert.is(decide(example, ACTION_ID, ['kvm']), 'yes');
  assert.is(decide(example, ACTION_ID, ['wheel']), undefined);
  const body = (t: string) => t.replace(/\/\*[\s\S]*?\*\//g, '').trim();
  assert.is(body(example), body(renderRule('kvm')));
});

test.run();
