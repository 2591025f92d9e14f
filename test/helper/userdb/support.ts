import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserDbError } from '../../../helper/src/userdb/errors.js';
import type { GetentDatabase, GetentRunner } from '../../../helper/src/userdb/getent.js';

export const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  '# a comment',
  '',
  'alice:x:1000:1000:Alice:/home/alice:/bin/bash',
  'bob:x:1001:1001::/home/bob:/bin/sh',
  'orphan:x:1002:4242::/home/orphan:/bin/sh',
  'broken:x:notanumber:1000::/:/bin/sh',
  'short:x:1003:1003',
  '+nisuser::::::',
  'alice:x:2000:2000:second alice is never seen:/:/bin/sh',
].join('\n') + '\n';

export const GROUP = [
  'root:x:0:',
  'alice:x:1000:',
  'bob:x:1001:',
  'kvm:x:106:alice,bob',
  'students:x:300:bob',
  'staff:x:50:alice , orphan',
  'again:x:1000:', // same gid as alice's group: the first name wins
  'broken:x:oops:alice',
].join('\n') + '\n';

/** Fixture passwd/group (and nsswitch) files in a temp dir; `done()` removes them. */
export function fixture(nsswitch?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-userdb-'));
  writeFileSync(join(dir, 'passwd'), PASSWD);
  writeFileSync(join(dir, 'group'), GROUP);
  if (nsswitch !== undefined) writeFileSync(join(dir, 'nsswitch.conf'), nsswitch);
  return {
    dir,
    options: {
      passwdFile: join(dir, 'passwd'),
      groupFile: join(dir, 'group'),
      nsswitchFile: join(dir, 'nsswitch.conf'),
    },
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A stand-in directory service: answers getent queries from fixed text, records each call. */
export function fakeGetent(answers: Partial<Record<GetentDatabase, Record<string, string>>>) {
  const calls: string[] = [];
  const run: GetentRunner = async (database, keys) => {
    calls.push(`${database} ${keys.join(' ')}`);
    return keys.map((k) => answers[database]?.[k] ?? '').join('');
  };
  return { run, calls };
}

export async function userDbError(fn: () => Promise<unknown>): Promise<UserDbError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof UserDbError) return err;
    throw err;
  }
  throw new Error('expected a UserDbError, nothing was thrown');
}
