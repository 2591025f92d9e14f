/**
 * From parsed options to everything needed to launch: the qemu argv (taps still to be filled
 * in), the bridges that need taps, and the nvram file to create. Nothing here changes the
 * system; all validation happens before anything is created.
 */
import { existsSync } from 'node:fs';
import { machine as unameMachine } from 'node:os';
import type { NicRequest } from '../../shared/src/protocol/messages.js';
import { isValidIfname } from '../../shared/src/protocol/names.js';
import { escapeForTerminal } from '../../shared/src/text/escape.js';
import type { LaunchOptions } from './cli/options.js';
import { planDisks } from './disk/disk.js';
import { FormatCache } from './disk/format-cache.js';
import { qemuImgFormat, type FormatDetector } from './disk/image-format.js';
import { ClientError } from './errors.js';
import { planFirmware, machineTypeFor } from './firmware/firmware.js';
import { planNetdev, type NetdevPlan } from './net/netdev.js';
import { detectAccel, type Accel } from './qemu/accel.js';
import { archProfile } from './qemu/arch.js';
import { requireQemu } from './qemu/binary.js';
import { ProbeCache } from './qemu/probe-cache.js';
import { QemuDeviceProber, type DeviceProber } from './qemu/probe.js';

export const DEFAULT_BRIDGE = 'virbr0';

export interface LaunchPlan {
  accel: Accel;
  /** Everything before the network arguments. */
  head: string[];
  nets: NetdevPlan[];
  /** Disks and the pass-through arguments. */
  tail: string[];
  nvramCopy: { from: string; to: string } | undefined;
  notes: string[];
}

export interface PlanEnvironment {
  machine: string;
  env: NodeJS.ProcessEnv;
  accel: Accel;
  prober?: DeviceProber;
  detectFormat?: FormatDetector;
  bridgeExists: (name: string) => boolean;
  debug: (level: number, message: string) => void;
  /** Resolve the qemu binary (throws when missing). */
  resolveQemu: (name: string, debianPackage: string | undefined) => string;
  cache?: ProbeCache;
}

export function defaultEnvironment(debug: PlanEnvironment['debug']): PlanEnvironment {
  return {
    machine: unameMachine(),
    env: process.env,
    accel: detectAccel(),
    bridgeExists: (name) => existsSync(`/sys/class/net/${name}`),
    debug,
    resolveQemu: requireQemu,
  };
}

/**
 * How a bridged netdev gets its tap: by name (`ifname=`), or as fds qemu inherits (`fd=N`, or
 * `fds=a:b:c` for a multi-queue tap). qemu refuses script=, downscript= and queues= beside fd=
 * and fds= (the fds are the queues), so those are left out there.
 */
export type TapArg = string | readonly number[];

function tapNetdev(n: NetdevPlan, tap: TapArg): string {
  if (typeof tap === 'string') return `${n.netdev},ifname=${tap}`;
  const kept = n.netdev.split(',').filter((o) => o !== 'script=no' && o !== 'downscript=no' && !o.startsWith('queues='));
  return [...kept, tap.length === 1 ? `fd=${tap[0]}` : `fds=${tap.join(':')}`].join(',');
}

/** The argv with the taps in place (`taps[i]` for nets[i], undefined for user networking). */
export function qemuArgv(plan: LaunchPlan, taps: ReadonlyArray<TapArg | undefined>): string[] {
  const net = plan.nets.flatMap((n, i) => {
    const tap = taps[i];
    return ['-device', n.device, '-netdev', tap === undefined ? n.netdev : tapNetdev(n, tap)];
  });
  return [...plan.head, ...net, ...plan.tail];
}

/** What the helper is asked for: each bridged netdev's bridge, its queues and the MAC qemu gets. */
export function nicRequests(plan: LaunchPlan): NicRequest[] {
  return plan.nets.filter((n) => n.connection !== 'user').map((n) => ({
    bridge: n.connection,
    ...(n.queues === undefined ? {} : { queues: n.queues }),
    ...(n.mac === undefined ? {} : { mac: n.mac }),
  }));
}

/**
 * The plan with the MACs the client chose for mac=auto netdevs under mac-lock on their -device
 * (`asked` parallel to the bridged nets).
 */
export function withChosenMacs(plan: LaunchPlan, asked: readonly NicRequest[]): LaunchPlan {
  let k = 0;
  const nets = plan.nets.map((n) => {
    if (n.connection === 'user') return n;
    const mac = asked[k++]?.mac;
    return mac === undefined || n.mac !== undefined ? n : { ...n, mac, device: `${n.device},mac=${mac}` };
  });
  return { ...plan, nets };
}

/**
 * `_QEMU_SUPPORTS_FILE_LOCKING=true|false` settles whether qemu has file locking without asking
 * it (as upstream xkvm); unset or empty: ask. Anything else is refused, not guessed.
 */
function fileLockingOverride(env: NodeJS.ProcessEnv): boolean | undefined {
  const value = env['_QEMU_SUPPORTS_FILE_LOCKING'];
  if (value === undefined || value === '') return undefined;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new ClientError('USAGE', `_QEMU_SUPPORTS_FILE_LOCKING must be 'true' or 'false' (or unset: ask qemu), got '${escapeForTerminal(value)}'`);
}

export async function makePlan(opts: LaunchOptions, env: PlanEnvironment): Promise<LaunchPlan> {
  const arch = archProfile(env.machine, { netModel: env.env['DEF_NETMODEL'] });
  const qemuName = opts.kvm ?? arch.qemu;
  const qemuPath = env.resolveQemu(qemuName, opts.kvm === undefined ? arch.qemuPackage : undefined);
  const notes: string[] = [];
  if (!env.accel.kvm) notes.push(`${env.accel.reason ?? 'KVM is not available'}: using TCG (software emulation, slower)`);

  const firmware = planFirmware({
    bios: opts.bios,
    uefi: opts.uefi,
    nvram: opts.uefiNvram,
    arch: arch.firmwareArch,
    machine: machineTypeFor(env.machine, opts.passthrough),
    firmwarePackage: arch.firmwarePackage,
  });
  for (const note of firmware.notes) env.debug(1, note);

  const cache = env.cache ?? new ProbeCache();
  const prober = env.prober ?? new QemuDeviceProber(qemuPath, cache);
  const formats = env.detectFormat === undefined ? new FormatCache() : undefined;
  try {
    const disks = await planDisks(opts.disks, {
      defaultDriver: env.env['DEF_DISK_DRIVER'] || 'virtio-blk',
      fileLocking: fileLockingOverride(env.env),
      prober,
      detectFormat: env.detectFormat ?? formats!.wrap(qemuImgFormat()),
      debug: env.debug,
    });
    const specs = opts.netdevs.length > 0 ? opts.netdevs : [DEFAULT_BRIDGE];
    const virtioModel = arch.machine === 's390x' ? 'virtio-net-ccw' : 'virtio-net-pci';
    const nets = specs.map((spec, i) => planNetdev(spec, i, { defaultModel: arch.netModel, virtioModel, prober }));

    const missing = nets.map((n) => n.connection).filter((c) => c !== 'user' && !(isValidIfname(c) && env.bridgeExists(c)));
    if (missing.length > 0) {
      const list = [...new Set(missing)].join(', ');
      throw new ClientError(
        'NO_BRIDGE',
        `bridge ${list} does not exist: create it (e.g. ip link add ${missing[0]} type bridge) or name an existing one, or use --netdev user`,
      );
    }

    const head = [
      qemuName,
      ...env.accel.args,
      ...(opts.noReboot ? ['-no-reboot'] : []),
      ...arch.archArgs(env.accel.kvm),
      ...firmware.args,
      '-device', `${arch.scsiBus},id=virtio-scsi-xkvm`,
      // As the newest upstream xkvm: a virtio-rng fed from the host's /dev/urandom, so a guest
      // never waits for entropy (first-boot key generation, early TLS).
      '-object', 'rng-random,filename=/dev/urandom,id=objrng0',
      '-device', `${arch.rngDevice},rng=objrng0,id=rng0`,
    ];
    return { accel: env.accel, head, nets, tail: [...disks, ...opts.passthrough], nvramCopy: firmware.nvramCopy, notes };
  } finally {
    cache.save();
    formats?.save();
  }
}
