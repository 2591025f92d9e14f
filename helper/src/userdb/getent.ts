import { execFile } from 'node:child_process';
import { TOOL_ENV } from '../defaults.js';
import { UserDbError } from './errors.js';

/** The databases the helper asks NSS about. */
export type GetentDatabase = 'passwd' | 'group' | 'initgroups';

/**
 * Ask NSS (LDAP, sssd, systemd …) through getent: resolves to getent's output, which is empty
 * when no key was found (getent's exit status 2; with several keys the found ones are printed).
 * Injectable so tests can stand in for a directory service.
 */
export type GetentRunner = (database: GetentDatabase, keys: readonly string[]) => Promise<string>;

const GETENT_PATH = '/usr/bin/getent';
const TIMEOUT_MS = 5000;

/** The real runner: getent by absolute path, no shell, fixed environment, a time limit. */
export function systemGetent(path: string = GETENT_PATH): GetentRunner {
  return (database, keys) => new Promise((resolve, reject) => {
    // `--` so that no key, whatever it holds, is read as an option.
    execFile(path, [database, '--', ...keys], {
      shell: false, timeout: TIMEOUT_MS, maxBuffer: 1 << 20, env: TOOL_ENV, encoding: 'utf8',
    }, (err, stdout, stderr) => {
      if (err === null) return resolve(stdout);
      if (err.code === 2) return resolve(stdout);
      const why = err.killed ? `timed out after ${TIMEOUT_MS} ms` : (stderr.trim() || err.message);
      reject(new UserDbError('USERDB_LOOKUP_FAILED',
        `${path} ${database} ${keys.join(' ')} failed: ${why}; expected a working user database`, { cause: err }));
    });
  });
}

/** Parse `getent initgroups USER` output: `USER  gid gid …` (groups beyond the primary). */
export function parseInitgroups(text: string): number[] {
  const first = text.split('\n')[0] ?? '';
  return first.trim().split(/\s+/).slice(1)
    .filter((w) => /^[0-9]{1,10}$/.test(w)).map(Number).filter((n) => n <= 0xffff_fffe);
}
