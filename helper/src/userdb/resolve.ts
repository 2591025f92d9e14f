import { readCached } from './cached-file.js';
import { UserDbError } from './errors.js';
import { groupNames, parseGroup, parsePasswd } from './files.js';
import { parseInitgroups, systemGetent, type GetentRunner } from './getent.js';
import { groupsBeyondFiles } from './nsswitch.js';
import type { GroupEntry, PasswdEntry, UserRecord } from './types.js';

export interface UserDbOptions {
  readonly passwdFile?: string;
  readonly groupFile?: string;
  readonly nsswitchFile?: string;
  /** How to ask NSS for users not in the files; `null` to use the files only (tests). */
  readonly getent?: GetentRunner | null;
}

const MAX_UID = 0xffff_fffe; // (uid_t)-1 is "no uid"

interface Sources {
  readonly passwdFile: string;
  readonly groupFile: string;
  readonly nsswitchFile: string;
  readonly getent: GetentRunner | null;
}

function sources(options: UserDbOptions): Sources {
  return {
    passwdFile: options.passwdFile ?? '/etc/passwd',
    groupFile: options.groupFile ?? '/etc/group',
    nsswitchFile: options.nsswitchFile ?? '/etc/nsswitch.conf',
    getent: options.getent === undefined ? systemGetent() : options.getent,
  };
}

/** A user database file, parsed; '' when it does not exist (cached until the file changes). */
function readDb<T>(path: string, parse: (text: string) => T): T {
  try {
    return readCached(path, parse);
  } catch (err) {
    throw new UserDbError('USERDB_IO', `${path}: cannot read it (${(err as Error).message}); expected a readable file`, { cause: err });
  }
}

/** Group names for a user found through NSS: primary gid plus `getent initgroups`, named by `getent group`. */
async function nssGroups(user: PasswdEntry, getent: GetentRunner, known: readonly GroupEntry[]): Promise<string[]> {
  const gids = [...new Set([user.gid, ...parseInitgroups(await getent('initgroups', [user.name]))])];
  const found = parseGroup(await getent('group', gids.map(String)));
  const byGid = new Map<number, string>();
  for (const g of [...known, ...found]) if (!byGid.has(g.gid)) byGid.set(g.gid, g.name);
  return gids.flatMap((gid) => byGid.get(gid) ?? []);
}

async function complete(user: PasswdEntry, fromFiles: boolean, s: Sources, groups: GroupEntry[]): Promise<UserRecord> {
  let names = fromFiles ? groupNames(user, groups) : [];
  if (s.getent !== null && (!fromFiles || groupsBeyondFiles(s.nsswitchFile))) {
    names = [...new Set([...names, ...await nssGroups(user, s.getent, groups)])];
  }
  return { name: user.name, uid: user.uid, gid: user.gid, groups: names };
}

async function find(
  s: Sources, match: (e: PasswdEntry) => boolean, key: string, missing: () => UserDbError,
): Promise<UserRecord> {
  const groups = readDb(s.groupFile, parseGroup);
  const local = readDb(s.passwdFile, parsePasswd).find(match);
  if (local !== undefined) return complete(local, true, s, groups);
  if (s.getent !== null) {
    const remote = parsePasswd(await s.getent('passwd', [key])).find(match);
    if (remote !== undefined) return complete(remote, false, s, groups);
  }
  throw missing();
}

function where(s: Sources): string {
  return s.getent === null ? s.passwdFile : `${s.passwdFile} or getent passwd`;
}

/** The user with this uid; a USERDB_NO_SUCH_UID error if there is none. */
export async function userByUid(uid: number, options: UserDbOptions = {}): Promise<UserRecord> {
  if (!Number.isInteger(uid) || uid < 0 || uid > MAX_UID) {
    throw new UserDbError('USERDB_BAD_KEY', `${String(uid)} is not a uid; expected an integer from 0 to ${MAX_UID}`);
  }
  const s = sources(options);
  return find(s, (e) => e.uid === uid, String(uid), () => new UserDbError('USERDB_NO_SUCH_UID',
    `uid ${uid} has no user entry (looked in ${where(s)}); expected the uid of an existing user`));
}

/**
 * The user with this name; a USERDB_NO_SUCH_USER error if there is none.
 * @internal The helper looks names up through userBySpec; tests call this directly (also with
 * names userBySpec would take for uids, to see them refused).
 */
export async function userByName(name: string, options: UserDbOptions = {}): Promise<UserRecord> {
  // Names that could never be in passwd(5): empty, with ':' or line breaks, or all digits (a uid).
  if (name === '' || /[:\n\r\0]/.test(name) || /^[0-9]+$/.test(name)) {
    throw new UserDbError('USERDB_BAD_KEY', `${JSON.stringify(name)} is not a user name; expected a name from the user database`);
  }
  const s = sources(options);
  return find(s, (e) => e.name === name, name, () => new UserDbError('USERDB_NO_SUCH_USER',
    `no user is named ${JSON.stringify(name)} (looked in ${where(s)}); expected an existing user name`));
}

/** `--user U` as the command line takes it: all digits is a uid, anything else a name. */
export async function userBySpec(spec: string, options: UserDbOptions = {}): Promise<UserRecord> {
  return /^[0-9]+$/.test(spec) ? userByUid(Number(spec), options) : userByName(spec, options);
}
