import { readCached } from './cached-file.js';

/**
 * Whether group membership can come from somewhere other than /etc/group: true when the
 * `group:` line of nsswitch.conf names a source other than `files` and `systemd` (sss, ldap,
 * winbind, nis, compat …). Then even a user found in /etc/passwd may belong to directory
 * groups, and missing one could let a `deny @group` line miss them — so the lookup also asks
 * `getent initgroups`. systemd's source is taken to add no memberships for users in the files.
 * A missing nsswitch.conf means glibc's default, files only.
 */
export function groupsBeyondFiles(nsswitchFile: string): boolean {
  try {
    // A missing file is '' here: glibc's default, files only.
    return readCached(nsswitchFile, namesOtherSources);
  } catch {
    return true; // cannot tell: ask NSS rather than risk missing a group
  }
}

function namesOtherSources(text: string): boolean {
  for (const raw of text.split('\n')) {
    const m = /^\s*group\s*:(.*)$/.exec(raw.replace(/#.*/, ''));
    if (m === null) continue;
    const sources = (m[1] ?? '').replace(/\[[^\]]*\]/g, ' ').trim().split(/\s+/).filter((s) => s !== '');
    return sources.some((s) => s !== 'files' && s !== 'systemd');
  }
  return false;
}
