/** `xkvm-helper policy check --user U --bridge B` and `xkvm-helper policy show`. */
import { checkPolicy } from '../policy/check.js';
import { loadPolicy } from '../policy/parse.js';
import { renderPolicy } from '../policy/show.js';
import { userBySpec } from '../userdb/resolve.js';

export async function policyCheck(config: string, userSpec: string, bridge: string): Promise<number> {
  const policy = loadPolicy(config);
  const user = await userBySpec(userSpec);
  const result = checkPolicy(policy, { name: user.name, uid: user.uid, groups: user.groups }, bridge);
  process.stdout.write(result.text);
  return result.status;
}

export function policyShow(config: string): number {
  process.stdout.write(renderPolicy(loadPolicy(config)));
  return 0;
}
