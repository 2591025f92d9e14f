/**
 * `xkvm doctor [--netdev NETDEV]... [--policy FILE]`: what a bridged VM needs, checked for the user
 * who runs it, one line a finding with its fix: KVM, /dev/vhost-net, the helper (socket or
 * pkexec), each bridge (exists, MTU, allowed or refused with the deciding policy line, the VLAN,
 * mac-lock and queues that apply), the taps left of max-taps, the qemu binary and its firmware.
 * Exit 0 when a VM with those netdevs would start (warnings allowed: no KVM means TCG), 1 when
 * not. It only looks: no request reaches the helper beyond a connection closed at once, and no
 * tap is made; the policy is read through the helper's unprivileged `policy check --json`.
 */
import { machine, userInfo } from 'node:os';
import { getopt } from '../cli/getopt.js';
import { ClientError } from '../errors.js';
import { DEFAULT_BRIDGE } from '../plan.js';
import { kvmFinding, vhostFinding } from './devices.js';
import { formatFinding, type Finding } from './finding.js';
import { helperFinding } from './helper-reach.js';
import { netdevFindings, parseNetdevAsk, tapsFinding } from './bridges.js';
import { helperProgram, type PolicyAnswer } from './policy.js';
import { qemuFindings } from './qemu.js';

const USAGE = `Usage: xkvm doctor [--netdev NETDEV]... [--policy FILE]

  Checks what a VM with these netdevs needs, for you: KVM, /dev/vhost-net, the
  xkvm helper, each bridge (and whether the policy allows you on it), the taps you
  have left, qemu and its firmware. One line a finding, with the fix. Makes no tap.
  Exits 0 when such a VM would start, 1 when not.

  -n, --netdev NETDEV  as for xkvm: user, or BRIDGE[,queues=N][,mac=...][,vhost=on]
                       (none: the bridge xkvm uses without --netdev, ${DEFAULT_BRIDGE})
      --policy FILE    the helper's policy file to check against (default: the helper's own)
`;

export interface DoctorOptions {
  readonly out?: (line: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

export async function doctor(argv: readonly string[], o: DoctorOptions = {}): Promise<number> {
  const out = o.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const { options, operands } = getopt(argv, [
    { long: 'netdev', short: 'n', takesValue: true }, { long: 'policy', takesValue: true }, { long: 'help', short: 'h', takesValue: false },
  ]);
  if (options.some((opt) => opt.name === 'help')) {
    out(USAGE.trimEnd());
    return 0;
  }
  if (operands.length > 0) throw new ClientError('USAGE', `doctor: unexpected argument '${operands[0]}': give netdevs with --netdev (see xkvm doctor --help)`);
  // As xkvm itself: no --netdev means one NIC on the default bridge.
  const given = options.filter((opt) => opt.name === 'netdev').map((opt) => opt.value ?? '');
  const asks = (given.length > 0 ? given : [DEFAULT_BRIDGE]).map(parseNetdevAsk);
  const config = options.filter((opt) => opt.name === 'policy').at(-1)?.value;
  const me = userInfo();
  const bridges = asks.filter((a) => a.connection !== 'user');

  const findings: Finding[] = [kvmFinding(), vhostFinding(asks.some((a) => a.vhost)), await helperFinding(bridges.length > 0, o.env)];
  const program = helperProgram();
  let answer: PolicyAnswer | undefined;
  for (const ask of asks) {
    const r = await netdevFindings(ask, { uid: me.uid, program, config }, me.username);
    findings.push(...r.findings);
    answer ??= r.answer;
  }
  const taps = tapsFinding(me.uid, answer, bridges.length);
  if (taps !== undefined) findings.push(taps);
  findings.push(...await qemuFindings(machine(), asks.length));
  for (const f of findings) out(formatFinding(f));
  const failed = findings.filter((f) => f.level === 'fail').length;
  out(failed === 0 ? 'a VM with these netdevs would start' : `a VM with these netdevs would not start: ${failed} problem(s) above`);
  return failed === 0 ? 0 : 1;
}
