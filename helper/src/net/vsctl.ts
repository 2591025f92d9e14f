import { NetError } from './errors.js';
import { errorText, type Runner } from './runner.js';
import { OVS_TIMEOUT_MS, OVS_VSCTL, OVS_VSCTL_TIMEOUT_S } from './tools.js';

/**
 * One ovs-vsctl run. `commands` are ovs-vsctl commands, each a list of words; they are chained
 * with `--` into one transaction. `--db` is the policy's socket when it has one.
 */
export interface VsctlRun {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

function vsctlArgs(ovsdb: string | undefined, commands: readonly (readonly string[])[], global: readonly string[] = []): string[] {
  const args = [...(ovsdb === undefined ? [] : [`--db=${ovsdb}`]), `--timeout=${OVS_VSCTL_TIMEOUT_S}`, ...global];
  for (const c of commands) args.push('--', ...c);
  return args;
}

export async function vsctl(run: Runner, ovsdb: string | undefined, commands: readonly (readonly string[])[],
  global: readonly string[] = []): Promise<VsctlRun> {
  return run({ file: OVS_VSCTL, args: vsctlArgs(ovsdb, commands, global), timeoutMs: OVS_TIMEOUT_MS });
}

/** Like vsctl, but a non-zero exit is a SYSTEM_ERROR saying what was being done. */
export async function vsctlOk(run: Runner, ovsdb: string | undefined, commands: readonly (readonly string[])[],
  doing: string, global: readonly string[] = []): Promise<string> {
  const r = await vsctl(run, ovsdb, commands, global);
  if (r.exitCode !== 0) {
    throw new NetError('SYSTEM_ERROR', `Open vSwitch: ${doing} failed: ${errorText(r.stderr)}`, { cause: r });
  }
  return r.stdout;
}
