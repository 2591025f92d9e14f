import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ClientError } from '../../../client/src/errors.js';
import { copyNvramTemplate } from '../../../client/src/firmware/nvram.js';

const root = mkdtempSync(join(tmpdir(), 'xkvm-nvram-test-'));
let serial = 0;
function freshDir(): string {
  const dir = join(root, `t${++serial}`);
  mkdirSync(dir);
  return dir;
}

function nvramError(from: string, to: string): ClientError {
  let caught: unknown;
  try {
    copyNvramTemplate(from, to);
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, ClientError, 'the copy did not fail');
  assert.is((caught as ClientError).code, 'NVRAM');
  return caught as ClientError;
}

test('the template is copied byte for byte to the new file, leaving nothing else behind', () => {
  const dir = freshDir();
  const template = join(root, `template-${serial}.fd`);
  const content = Buffer.from(Array.from({ length: 70000 }, (_, i) => (i * 7) & 0xff));
  writeFileSync(template, content);
  const to = join(dir, 'vm-vars.fd');
  copyNvramTemplate(template, to);
  assert.ok(readFileSync(to).equals(content));
  assert.equal(readdirSync(dir), ['vm-vars.fd']);
  assert.is(statSync(to).nlink, 1, 'no second name (temp link) remains');
});

test('an existing file is never overwritten, and no temporary file is left', () => {
  const dir = freshDir();
  const template = join(root, `template-${serial}.fd`);
  writeFileSync(template, 'template');
  const to = join(dir, 'vm-vars.fd');
  writeFileSync(to, 'my variables');
  const error = nvramError(template, to);
  assert.ok(error.message.includes(to), error.message);
  assert.is(readFileSync(to, 'utf8'), 'my variables');
  assert.equal(readdirSync(dir), ['vm-vars.fd']);
});

test('a missing template fails without creating the file or a temporary one', () => {
  const dir = freshDir();
  const to = join(dir, 'vm-vars.fd');
  const error = nvramError(join(root, 'no-such-template.fd'), to);
  assert.ok(error.message.includes('no-such-template.fd'), error.message);
  assert.equal(readdirSync(dir), []);
});

test('a destination in a missing directory fails with a ClientError', () => {
  const template = join(root, 'template-any.fd');
  writeFileSync(template, 'template');
  nvramError(template, join(root, 'no-such-dir', 'vm-vars.fd'));
});

test.after(() => {
  rmSync(root, { recursive: true, force: true });
});

test.run();
