import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { readCached } from '../../../helper/src/userdb/cached-file.js';

const dir = mkdtempSync(join(tmpdir(), 'xkvm-cached-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('an unchanged file is parsed once; the same file read with another parser gets that parser\'s value', () => {
  const file = join(dir, 'a');
  writeFileSync(file, 'one two');
  let parses = 0;
  const words = (text: string): string[] => { parses += 1; return text.split(' '); };
  const length = (text: string): number => text.length;
  assert.equal(readCached(file, words), ['one', 'two']);
  assert.equal(readCached(file, words), ['one', 'two']);
  assert.is(parses, 1);
  assert.is(readCached(file, length), 7);
  assert.equal(readCached(file, words), ['one', 'two']);
});

test('a missing file parses as empty text', () => {
  assert.equal(readCached(join(dir, 'none'), (t) => t), '');
});

test.run();
