/** `xkvm-helper policy check --user U --bridge B [--json]` and `xkvm-helper policy show`. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ifindexOf } from '../net/ifindex.js';
import { checkPolicy, type TapUsage } from '../policy/check.js';
import { loadPolicy } from '../policy/parse.js';
import { renderPolicy } from '../policy/show.js';
import { Ledger } from '../records/ledger.js';
import { userBySpec } from '../userdb/resolve.js';

/**
 * The taps `uid`'s requests made that exist now, as max-taps counts them: the ledger's completed
 * entries whose interface index is still that name's. The ledger is root's: anyone else is told so.
 */
function tapUsage(stateDir: string, uid: number): TapUsage {
  if (process.geteuid?.() !== 0) return { unknown: `the ledger in ${stateDir} is root's: run this as root to see it` };
  if (!existsSync(join(stateDir, 'ledger'))) return { held: 0 };
  try {
    const entries = new Ledger(stateDir).read(uid);
    return { held: entries.filter((e) => e.ifindex !== undefined && ifindexOf(e.tap) === e.ifindex).length };
  } catch (error) {
    return { unknown: `cannot read the ledger in ${stateDir}: ${(error as Error).message}` };
  }
}

export async function policyCheck(config: string, userSpec: string, bridge: string, stateDir: string, json = false): Promise<number> {
  const policy = loadPolicy(config);
  const user = await userBySpec(userSpec);
  const result = checkPolicy(policy, { name: user.name, uid: user.uid, groups: user.groups }, bridge, tapUsage(stateDir, user.uid));
  process.stdout.write(json ? `${JSON.stringify(result.json)}\n` : result.text);
  return result.status;
}

export function policyShow(config: string): number {
  process.stdout.write(renderPolicy(loadPolicy(config)));
  return 0;
}
