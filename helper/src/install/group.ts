import { parseWho } from '../policy/values.js';
import { parseGroup } from '../userdb/files.js';
import { systemGetent, type GetentRunner } from '../userdb/getent.js';
import { InstallError } from './errors.js';

/**
 * `--group NAME`: a name helper.conf can also hold (`allow BRIDGE @NAME`, the same character
 * rule), that the group database knows (through NSS: files, LDAP, sssd …). Throws
 * INSTALL_BAD_GROUP before anything is written.
 */
export async function checkGroup(name: string, getent: GetentRunner = systemGetent()): Promise<string> {
  const who = parseWho(`@${name}`);
  if (!('kind' in who) || who.kind !== 'group' || name === '') {
    const why = 'problem' in who ? who.problem : 'not a group name';
    throw new InstallError('INSTALL_BAD_GROUP',
      `--group ${JSON.stringify(name)}: ${why}; expected the name of an existing group (letters, digits, _ . @ -, not starting with - . @)`);
  }
  const found = parseGroup(await getent('group', [name])).find((g) => g.name === name);
  if (found === undefined) {
    throw new InstallError('INSTALL_BAD_GROUP',
      `--group ${name}: no such group (getent group ${name} found nothing); expected an existing group, e.g. create it with groupadd ${name}`);
  }
  return name;
}
