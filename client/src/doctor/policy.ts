/**
 * What the policy says for this user on a bridge, from the helper's own `policy check --json`
 * (the policy file is world-readable; the check needs no privilege and makes no tap). The helper
 * program is the one beside this client (same package), else the installed launcher.
 */
import { execFile } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findPackageRoot } from '../../../shared/src/native/package-root.js';
import { INSTALLED_HELPER } from '../helper/locate.js';

/** The helper's answer (see helper/src/policy/check.ts, CheckJson), as far as doctor reads it. */
export interface PolicyAnswer {
  readonly allowed: boolean;
  readonly rule: string | null;
  readonly reason: string;
  readonly maxTaps: number;
  readonly maxQueues: number;
  readonly vlan: number | null;
  readonly vlanConflict: string | null;
  readonly macLock: string | null;
}

/** How to run the helper program: [file, ...leading args]. */
export function helperProgram(script = process.argv[1]): string[] | undefined {
  const root = script === undefined ? undefined : findPackageRoot(dirname(realpathOr(script)));
  const main = root === undefined ? undefined : join(root, 'dist', 'helper', 'src', 'main.js');
  if (main !== undefined && existsSync(main)) return [process.execPath, main];
  return existsSync(INSTALLED_HELPER) ? [process.execPath, INSTALLED_HELPER] : undefined;
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function field<T>(value: unknown, key: string, check: (v: unknown) => v is T): T {
  const v: unknown = typeof value === 'object' && value !== null ? Reflect.get(value, key) : undefined;
  if (!check(v)) throw new Error(`the helper's policy check gave no valid ${key}`);
  return v;
}

const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isStrOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const isNumOrNull = (v: unknown): v is number | null => v === null || isNum(v);

/**
 * Reads the helper's JSON line strictly: anything else is an Error saying so.
 * @internal Exported for the tests of what is accepted.
 */
export function parseAnswer(stdout: string): PolicyAnswer {
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    throw new Error(`the helper's policy check did not answer in JSON: ${stdout.slice(0, 200)}`);
  }
  return {
    allowed: field(value, 'allowed', isBool), rule: field(value, 'rule', isStrOrNull), reason: field(value, 'reason', isStr),
    maxTaps: field(value, 'maxTaps', isNum), maxQueues: field(value, 'maxQueues', isNum),
    vlan: field(value, 'vlan', isNumOrNull), vlanConflict: field(value, 'vlanConflict', isStrOrNull), macLock: field(value, 'macLock', isStrOrNull),
  };
}

/** `policy check --user UID --bridge BR --json` through `program`; the answer, or an Error saying why there is none. */
export function checkBridge(program: readonly string[], config: string | undefined, uid: number, bridge: string): Promise<PolicyAnswer> {
  const [file, ...lead] = program;
  const args = [...lead, 'policy', 'check', '--user', String(uid), '--bridge', bridge, '--json', ...(config === undefined ? [] : ['--config', config])];
  return new Promise((resolve, reject) => {
    execFile(file!, args, { encoding: 'utf8', timeout: 10_000, maxBuffer: 1 << 20, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } }, (error, stdout, stderr) => {
      // Exit 1 is a denial, with its answer on stdout; anything else without an answer is an error.
      if (error !== null && (error.code !== 1 || stdout === '')) {
        reject(new Error(stderr.trim().split('\n')[0] || error.message));
        return;
      }
      try {
        resolve(parseAnswer(stdout.trim()));
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}
