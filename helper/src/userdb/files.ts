import type { GroupEntry, PasswdEntry } from './types.js';

const ID = /^[0-9]{1,10}$/;

function id(text: string | undefined): number | undefined {
  if (text === undefined || !ID.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffff_fffe ? n : undefined;
}

function lines(text: string): string[][] {
  return text.split('\n')
    .map((l) => l.replace(/\r$/, ''))
    // Blank lines, comments and NIS compat entries (+name, -name) are not users or groups.
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('+') && !l.startsWith('-'))
    .map((l) => l.split(':'));
}

/** Parse passwd(5) text (also `getent passwd` output). Malformed lines are skipped, as glibc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const fields of lines(text)) {
    const [name, , uidText, gidText] = fields;
    const uid = id(uidText);
    const gid = id(gidText);
    if (name === undefined || name === '' || uid === undefined || gid === undefined || fields.length < 7) continue;
    out.push({ name, uid, gid });
  }
  return out;
}

/** Parse group(5) text (also `getent group` output). Malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const fields of lines(text)) {
    const [name, , gidText, memberText = ''] = fields;
    const gid = id(gidText);
    if (name === undefined || name === '' || gid === undefined || fields.length < 4) continue;
    out.push({ name, gid, members: memberText.split(',').map((m) => m.trim()).filter((m) => m !== '') });
  }
  return out;
}

/** Group names of `user`: the primary group by gid first, then every group listing it as a member. */
export function groupNames(user: PasswdEntry, groups: readonly GroupEntry[]): string[] {
  const names = new Set<string>();
  const primary = groups.find((g) => g.gid === user.gid);
  if (primary !== undefined) names.add(primary.name);
  for (const g of groups) if (g.members.includes(user.name)) names.add(g.name);
  return [...names];
}
