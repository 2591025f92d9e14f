import { mkdirSync, symlinkSync } from 'node:fs';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { loadPolicy } from '../../../helper/src/policy/parse.js';
import { acceptAnyFile, policyError, tempDir } from './support.js';

const trusting = { checkFile: acceptAnyFile };

test('a relative include is read from the including file\'s directory, in place', () => {
  const u = tempDir();
  try {
    u.write('main.conf', 'allow br0 alice\ninclude extra.conf\ndeny br0 bob\n');
    u.write('extra.conf', '# extra\nallow br1 @kvm\n');
    const policy = loadPolicy(u.path('main.conf'), trusting);
    assert.equal(policy.files, [u.path('main.conf'), u.path('extra.conf')]);
    assert.equal(policy.directives.map((d) => `${d.source.file}:${d.source.line}`), [
      `${u.path('main.conf')}:1`, `${u.path('main.conf')}:2`, `${u.path('extra.conf')}:2`, `${u.path('main.conf')}:3`,
    ]);
    const include = policy.directives[1];
    assert.is(include?.kind === 'include' ? include.path : undefined, u.path('extra.conf'));
  } finally {
    u.done();
  }
});

test('a relative include inside an included file is relative to that file', () => {
  const t = tempDir({ 'main.conf': 'include sub/a.conf\n' });
  try {
    mkdirSync(t.path('sub'), { mode: 0o755 });
    t.write('sub/a.conf', 'include b.conf\n');
    t.write('sub/b.conf', 'allow br0 alice\n');
    assert.is(loadPolicy(t.path('main.conf'), trusting).access[0]?.source.file, t.path('sub/b.conf'));
  } finally {
    t.done();
  }
});

test('an absolute include is read as written', () => {
  const a = tempDir({ 'extra.conf': 'allow br1 bob\n' });
  const b = tempDir();
  try {
    b.write('main.conf', `include ${a.path('extra.conf')}\n`);
    assert.is(loadPolicy(b.path('main.conf'), trusting).access[0]?.source.file, a.path('extra.conf'));
  } finally {
    a.done();
    b.done();
  }
});

test('an error inside an include names the included file and its line', () => {
  const t = tempDir({ 'main.conf': '# main\ninclude extra.conf\n', 'extra.conf': 'allow br0 alice\n\nmax-taps many\n' });
  try {
    const err = policyError(() => loadPolicy(t.path('main.conf'), trusting));
    assert.is(err.code, 'POLICY_SYNTAX');
    assert.is(err.file, t.path('extra.conf'));
    assert.is(err.line, 3);
    assert.is(err.message,
      `${t.path('extra.conf')}:3: "many" is not a whole number; expected a whole number of taps from 0 to 4096`
      + ` (included from ${t.path('main.conf')}:2)`);
  } finally {
    t.done();
  }
});

test('a duplicate setting across files names both files and lines', () => {
  const t = tempDir({ 'main.conf': 'ovsdb unix:/a.sock\ninclude extra.conf\n', 'extra.conf': '\novsdb unix:/b.sock\n' });
  try {
    const err = policyError(() => loadPolicy(t.path('main.conf'), trusting));
    assert.ok(err.message.startsWith(
      `${t.path('extra.conf')}:2: ovsdb is already set at ${t.path('main.conf')}:1; expected`), err.message);
  } finally {
    t.done();
  }
});

test('a missing include is an I/O error at the include line', () => {
  const t = tempDir({ 'main.conf': '\n\ninclude nowhere.conf\n' });
  try {
    const err = policyError(() => loadPolicy(t.path('main.conf'), trusting));
    assert.is(err.code, 'POLICY_IO');
    assert.is(err.line, 3);
    assert.ok(err.message.startsWith(`${t.path('main.conf')}:3: cannot read included file ${t.path('nowhere.conf')} (ENOENT`), err.message);
    assert.ok(err.message.includes('; expected a readable policy file'));
  } finally {
    t.done();
  }
});

test('a file including itself is a loop', () => {
  const t = tempDir({ 'main.conf': 'allow br0 alice\ninclude main.conf\n' });
  try {
    const err = policyError(() => loadPolicy(t.path('main.conf'), trusting));
    assert.is(err.code, 'POLICY_INCLUDE_LOOP');
    assert.is(err.message, `${t.path('main.conf')}:2: include ${t.path('main.conf')} makes a loop`
      + ` (${t.path('main.conf')} -> ${t.path('main.conf')}); expected a file that is not already being included`);
  } finally {
    t.done();
  }
});

test('a loop through two files is found at the line that closes it', () => {
  const t = tempDir({ 'a.conf': 'include b.conf\n', 'b.conf': '# b\ninclude a.conf\n' });
  try {
    const err = policyError(() => loadPolicy(t.path('a.conf'), trusting));
    assert.is(err.code, 'POLICY_INCLUDE_LOOP');
    assert.is(err.file, t.path('b.conf'));
    assert.is(err.line, 2);
    assert.ok(err.message.includes(`(${t.path('a.conf')} -> ${t.path('b.conf')} -> ${t.path('a.conf')})`), err.message);
    assert.ok(err.message.endsWith(`(included from ${t.path('a.conf')}:1)`), err.message);
  } finally {
    t.done();
  }
});

test('a loop through a symlink (same file, other name) is still found', () => {
  const t = tempDir({ 'a.conf': 'include link.conf\n' });
  try {
    symlinkSync(t.path('a.conf'), t.path('link.conf'));
    assert.is(policyError(() => loadPolicy(t.path('a.conf'), trusting)).code, 'POLICY_INCLUDE_LOOP');
  } finally {
    t.done();
  }
});

test('the same file included twice side by side is not a loop', () => {
  const t = tempDir({ 'main.conf': 'include x.conf\ninclude x.conf\n', 'x.conf': 'allow br0 alice\n' });
  try {
    assert.is(loadPolicy(t.path('main.conf'), trusting).access.length, 2);
  } finally {
    t.done();
  }
});

test('includes nested deeper than the limit are refused', () => {
  const t = tempDir();
  try {
    for (let i = 0; i < 4; i += 1) t.write(`${i}.conf`, `include ${i + 1}.conf\n`);
    t.write('4.conf', 'allow br0 alice\n');
    assert.is(loadPolicy(t.path('0.conf'), { ...trusting, maxIncludeDepth: 4 }).access.length, 1);
    const err = policyError(() => loadPolicy(t.path('0.conf'), { ...trusting, maxIncludeDepth: 3 }));
    assert.is(err.code, 'POLICY_INCLUDE_DEPTH');
    assert.is(err.file, t.path('3.conf'));
    assert.ok(err.message.startsWith(`${t.path('3.conf')}:1: include ${t.path('4.conf')} would nest includes 4 deep;`
      + ' expected at most 3 levels of include (included from'), err.message);
  } finally {
    t.done();
  }
});

test('the default include depth limit stops a long chain', () => {
  const t = tempDir();
  try {
    for (let i = 0; i < 12; i += 1) t.write(`${i}.conf`, `include ${i + 1}.conf\n`);
    t.write('12.conf', '');
    assert.is(policyError(() => loadPolicy(t.path('0.conf'), trusting)).code, 'POLICY_INCLUDE_DEPTH');
  } finally {
    t.done();
  }
});

test.run();
