/** A user as the helper needs it: name, uid, primary gid, and every group name it belongs to. */
export interface UserRecord {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** The primary group (by gid) first, then every group listing the user as a member; no repeats. */
  readonly groups: readonly string[];
}

/** One line of passwd(5) (the fields the helper uses). */
export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** One line of group(5). */
export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}
