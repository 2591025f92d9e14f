/**
 * Turn one --netdev spec ("br0,model=e1000,mac=:05,vhost=on") into a -device and a -netdev
 * argument, splitting the extra fields by what the device model accepts, as the reference does.
 */
import { MAX_QUEUES } from '../../../shared/src/protocol/limits.js';
import { isValidIfname, IFNAME_RULE } from '../../../shared/src/protocol/names.js';
import { ClientError } from '../errors.js';
import { isDeviceOption, type DeviceProber } from '../qemu/probe.js';
import { padMac, randomMac } from './mac.js';

export interface NetdevPlan {
  /** 'user', or the bridge name. */
  connection: string;
  id: string;
  /** -device value, complete. */
  device: string;
  /** -netdev value without the tap's ifname (added once the tap is known). */
  netdev: string;
  /** The MAC on -device, when the client chose it (any mac= but auto); qemu picks it otherwise. */
  mac?: string;
  /** A tap's queues=N (qemu's -netdev tap option): the helper makes a multi-queue tap. */
  queues?: number;
}

/** A tap's queues as written (decimal, 1 to MAX_QUEUES), or undefined. */
export function queueCount(value: string): number | undefined {
  const n = /^[1-9][0-9]{0,2}$/.test(value) ? Number(value) : NaN;
  return n <= MAX_QUEUES ? n : undefined;
}

/** qemu's `-netdev tap,queues=N`, checked before the helper is asked. */
function parseQueues(value: string, spec: string): number {
  const n = queueCount(value);
  if (n === undefined) {
    throw new ClientError('BAD_NETDEV', `--netdev '${spec}': queues= must be a whole number from 1 to ${MAX_QUEUES} (the tap's queues), got '${value}'`);
  }
  return n;
}

/** Split a comma-separated spec as bash does with IFS=",": a single trailing empty field vanishes. */
export function splitFields(spec: string): string[] {
  if (spec === '') return [];
  const fields = spec.split(',');
  if (fields[fields.length - 1] === '') fields.pop();
  return fields;
}

export interface NetdevContext {
  defaultModel: string;
  /** What model=virtio means on this architecture (virtio-net-ccw on s390x). */
  virtioModel: string;
  prober: DeviceProber;
  random?: (n: number) => Buffer;
}

export function planNetdev(spec: string, index: number, ctx: NetdevContext): NetdevPlan {
  const [connection, ...tokens] = splitFields(spec);
  if (connection === undefined || connection === '') {
    throw new ClientError('BAD_NETDEV', `--netdev '${spec}': the first field must be 'user' or a bridge name`);
  }
  if (connection !== 'user' && !isValidIfname(connection)) {
    throw new ClientError('BAD_NETDEV', `--netdev '${spec}': '${connection}' is not a bridge name (${IFNAME_RULE}) nor 'user'`);
  }
  if (tokens.includes('')) {
    throw new ClientError('BAD_NETDEV', `--netdev '${spec}': empty field (fields are separated by single commas)`);
  }
  const id = `net${String(index).padStart(2, '0')}`;
  const isTap = connection !== 'user';
  const netdev = isTap ? [`type=tap`, `id=${id}`, 'script=no', 'downscript=no'] : ['type=user', `id=${id}`];

  let model = ctx.defaultModel;
  for (const token of tokens) {
    if (!token.startsWith('model=')) continue;
    const value = token.slice('model='.length);
    if (value === '') throw new ClientError('BAD_NETDEV', `--netdev '${spec}': model= needs a device model (e.g. virtio, e1000)`);
    model = value === 'virtio' ? ctx.virtioModel : value;
  }

  let mac = 'auto';
  let queues: number | undefined;
  const deviceOpts: string[] = [];
  for (const token of tokens) {
    if (token.startsWith('mac=')) { mac = token.slice(4); continue; }
    if (token.startsWith('macaddr=')) { mac = token.slice(8); continue; }
    if (token.startsWith('model=')) continue;
    if (isDeviceOption(ctx.prober, model, token)) deviceOpts.push(token);
    else {
      netdev.push(token);
      if (isTap && token.startsWith('queues=')) queues = parseQueues(token.slice('queues='.length), spec);
    }
  }
  const plan: NetdevPlan = { connection, id, device: '', netdev: netdev.join(',') };
  if (mac !== 'auto') {
    plan.mac = mac === 'random' ? randomMac(ctx.random) : padMac(mac, index);
    deviceOpts.push(`mac=${plan.mac}`);
  }
  if (queues !== undefined) plan.queues = queues;
  plan.device = [model, `netdev=${id}`, ...deviceOpts].join(',');
  return plan;
}
