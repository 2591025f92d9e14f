/**
 * `xkvm tap-control make-nics [-v] NIC...` (NIC: user, or BRIDGE[,queues=N][,mac=MAC]) and
 * `xkvm tap-control ovs-cleanup BRIDGE:TAP...`, the reference's interface for scripts, served by
 * the helper: make-nics prints `TAP:TYPE` (or `skip` for `user`) a line and the taps persist
 * until their owner removes them; ovs-cleanup removes the caller's own ports.
 */
import { getopt } from './cli/getopt.js';
import { ClientError } from './errors.js';
import { makeNics, ovsCleanup } from './helper/session.js';
import { queueCount } from './net/netdev.js';
import { MAX_QUEUES } from '../../shared/src/protocol/limits.js';
import type { NicRequest } from '../../shared/src/protocol/messages.js';
import { isValidIfname, IFNAME_RULE } from '../../shared/src/protocol/names.js';
import { macProblem } from '../../shared/src/protocol/validate.js';

const USAGE = `Usage: xkvm tap-control make-nics [-v] NIC [NIC...]
       xkvm tap-control ovs-cleanup BRIDGE:TAP [BRIDGE:TAP...]

  make-nics: a tap owned by you on each bridge (through xkvm-helper); prints
  TAP:TYPE a line (TYPE brctl or ovs), or 'skip' for 'user'. The taps stay
  until you delete them (ip tuntap del mode tap TAP).
  NIC is 'user' or BRIDGE[,queues=N][,mac=MAC], e.g. br0,queues=4,mac=52:54:00:12:34:56
    queues=N  a multi-queue tap (1 to ${MAX_QUEUES}, up to your max-queues), for qemu's
              -netdev tap,queues=N
    mac=MAC   the guest's MAC (six hex pairs); required where mac-lock applies to you
  ovs-cleanup: remove your taps' ports from Open vSwitch bridges.
`;

/** One make-nics operand: BRIDGE[,queues=N][,mac=MAC] (each option at most once). */
function parseNic(operand: string): NicRequest {
  const [bridge = '', ...options] = operand.split(',');
  checkName(bridge, 'bridge');
  if (bridge === 'user') throw new ClientError('USAGE', `make-nics: '${operand}': user networking takes no options`);
  const nic: NicRequest = { bridge };
  for (const option of options) {
    const eq = option.indexOf('=');
    const key = eq < 0 ? option : option.slice(0, eq);
    const value = eq < 0 ? undefined : option.slice(eq + 1);
    const where = `make-nics: '${operand}'`;
    if (key !== 'queues' && key !== 'mac') {
      throw new ClientError('USAGE', `${where}: unknown option '${key}' (a NIC is BRIDGE[,queues=N][,mac=MAC])`);
    }
    if (nic[key] !== undefined) throw new ClientError('USAGE', `${where}: ${key}= given twice`);
    if (value === undefined || value === '') throw new ClientError('USAGE', `${where}: ${key}= needs a value`);
    if (key === 'queues') {
      const n = queueCount(value);
      if (n === undefined) throw new ClientError('USAGE', `${where}: queues= must be a whole number from 1 to ${MAX_QUEUES}, got '${value}'`);
      nic.queues = n;
    } else {
      const problem = macProblem(value);
      if (problem !== undefined) throw new ClientError('USAGE', `${where}: mac= must be the guest's unicast MAC: ${problem}`);
      nic.mac = value.toLowerCase();
    }
  }
  return nic;
}

function checkName(name: string, what: string): void {
  if (!isValidIfname(name)) throw new ClientError('USAGE', `${what} '${name}' is not an interface name (${IFNAME_RULE})`);
}

async function makeNicsCommand(argv: string[]): Promise<number> {
  const { options, operands } = getopt(argv, [{ long: 'verbose', short: 'v', takesValue: false }, { long: 'help', short: 'h', takesValue: false }]);
  if (options.some((o) => o.name === 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (operands.length === 0) throw new ClientError('USAGE', 'make-nics: must give a bridge (xkvm tap-control make-nics BRIDGE...)');
  // Every operand is checked before the helper is asked for anything.
  const asked = operands.filter((b) => b !== 'user').map(parseNic);
  let nics: Awaited<ReturnType<typeof makeNics>>['nics'] = [];
  if (asked.length > 0) {
    const session = await makeNics(asked, 'persistent');
    // Persistent taps outlive the connection: close it, or the process would wait on it.
    session.connection.close();
    nics = session.nics;
  }
  let k = 0;
  const lines = operands.map((b) => {
    if (b === 'user') return 'skip';
    const nic = nics[k++]!;
    return `${nic.tap}:${nic.type}`;
  });
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

async function ovsCleanupCommand(argv: string[]): Promise<number> {
  if (argv.length === 0) throw new ClientError('USAGE', 'ovs-cleanup: must give BRIDGE:TAP pairs');
  const ports = argv.map((item) => {
    const colon = item.lastIndexOf(':');
    if (colon <= 0) throw new ClientError('USAGE', `ovs-cleanup: '${item}' is not BRIDGE:TAP`);
    const port = { bridge: item.slice(0, colon), tap: item.slice(colon + 1) };
    checkName(port.bridge, 'bridge');
    checkName(port.tap, 'tap');
    return port;
  });
  const removed = await ovsCleanup(ports);
  const gone = new Set(removed.map((p) => `${p.bridge}:${p.tap}`));
  const missed = ports.filter((p) => !gone.has(`${p.bridge}:${p.tap}`));
  for (const p of missed) process.stderr.write(`xkvm: ${p.bridge}:${p.tap} was not removed\n`);
  return missed.length;
}

export async function tapControl(argv: string[]): Promise<number> {
  const [mode, ...rest] = argv;
  switch (mode) {
    case 'make-nics': return makeNicsCommand(rest);
    case 'ovs-cleanup': return ovsCleanupCommand(rest);
    case '-h': case '--help':
      process.stdout.write(USAGE);
      return 0;
    case undefined: throw new ClientError('USAGE', 'tap-control: must give a mode: make-nics or ovs-cleanup');
    default: throw new ClientError('USAGE', `tap-control: unknown mode '${mode}': use make-nics or ovs-cleanup`);
  }
}
