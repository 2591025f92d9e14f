import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyError } from '../../../helper/src/policy/errors.js';
import { parsePolicyText } from '../../../helper/src/policy/parse.js';
import type { FileCheck } from '../../../helper/src/policy/safety.js';
import type { Policy } from '../../../helper/src/policy/types.js';

/** Trust any regular file: these tests write policies as an ordinary user, in temporary directories. */
export const acceptAnyFile: FileCheck = () => undefined;

/** The file name policy texts pretend to come from in unit tests. */
export const CONF = '/etc/xkvm/helper.conf';

export function parse(text: string): Policy {
  return parsePolicyText(text, CONF, { checkFile: acceptAnyFile });
}

/** The PolicyError `fn` throws (fails the test if it throws nothing or something else). */
export function policyError(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('expected a PolicyError, nothing was thrown');
}

/** A fresh temporary directory (mode 0700) with files written in it; `done()` removes it. */
export function tempDir(files: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-policy-'));
  chmodSync(dir, 0o700);
  const write = (name: string, text: string, mode = 0o644): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };
  for (const [name, text] of Object.entries(files)) write(name, text);
  return { dir, write, path: (name: string) => join(dir, name), done: () => rmSync(dir, { recursive: true, force: true }) };
}

export const alice = { name: 'alice', uid: 1000, groups: ['alice', 'kvm'] } as const;
export const bob = { name: 'bob', uid: 1001, groups: ['bob', 'students'] } as const;
