/**
 * libvirt's session mode (`qemu:///session`) for an ordinary test user, inside a network
 * namespace, orchestrated by root (system tests only):
 *
 *   const lv = startLibvirtSession(ns, user, { bridgeHelper: launcher });
 *   try {
 *     lv.define(domainXml({ name: 'vm', bridge: 'br0', mac }));
 *     lv.mustVirsh('start', 'vm');
 *   } finally {
 *     lv.stop();
 *   }
 *
 * Every `virsh -c qemu:///session` runs as `ip netns exec NS runuser -u USER -- env -i ...`
 * (Netns.exec) with XDG_RUNTIME_DIR set to a private directory this module makes (owned by the
 * user, mode 0700, under /tmp). The first virsh finds no daemon socket there and starts the
 * user's own daemon (`libvirtd --timeout=120` on Debian 12's libvirt 9.0), which inherits the
 * namespace: so the qemu it starts, and the bridge helper it runs, see the namespace's bridges,
 * and the taps the xkvm helper in that namespace makes are there too.
 *
 * What libvirt 9.0 does with `bridge_helper` (seen here): it runs the helper itself (not qemu) as
 * `HELPER --use-vnet --br=BR --fd=N`, with fds 0 (/dev/null), 2 (captured: its text ends up in
 * virsh's error) and N only, and a *filtered* environment: PATH, HOME, USER, LOGNAME,
 * XDG_RUNTIME_DIR, LC_ALL=C. Anything else (XKVM_HELPER_SOCKET) does not reach the helper, which
 * so finds the xkvm helper where it is installed, /run/xkvm/helper.sock: with `helperSocket`, the
 * session runs with a private /run where the test helper's socket is at that path.
 *
 * stop() kills the user's processes in the namespace (the daemon, virtlogd, qemu) by pid, and
 * removes the runtime directory, the private /run's layers and the user's libvirt files (~/.config/libvirt,
 * ~/.cache/libvirt, ~/.local/share/libvirt).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecResult, Netns, TestUser } from './netns.js';
import { isRunning, procUid } from './procs.js';

const VIRSH = '/usr/bin/virsh';
const LIBVIRTD = '/usr/sbin/libvirtd';
const IP = '/usr/sbin/ip';

const SAFE_PATH = /^\/[A-Za-z0-9_./-]+$/;
const DOMAIN_NAME = /^[A-Za-z0-9_-]{1,40}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

export interface DomainSpec {
  readonly name: string;
  /** An `<interface type='bridge'>` on this bridge (none when absent). */
  readonly bridge?: string;
  readonly mac?: string;
}

/**
 * A small TCG domain (`type='qemu'`, 128 MiB, no display) that boots from the network: with a
 * bridge interface (virtio, the MAC given), qemu's iPXE ROM sends DHCP requests from that MAC.
 */
export function domainXml(spec: DomainSpec): string {
  if (!DOMAIN_NAME.test(spec.name)) throw new Error(`bad domain name ${JSON.stringify(spec.name)}`);
  if (spec.bridge !== undefined && !IFNAME.test(spec.bridge)) throw new Error(`bad bridge ${JSON.stringify(spec.bridge)}`);
  if (spec.mac !== undefined && !MAC.test(spec.mac)) throw new Error(`bad MAC ${JSON.stringify(spec.mac)}`);
  const nic = spec.bridge === undefined ? '' : [
    "    <interface type='bridge'>",
    `      <source bridge='${spec.bridge}'/>`,
    "      <model type='virtio'/>",
    ...(spec.mac === undefined ? [] : [`      <mac address='${spec.mac}'/>`]),
    '    </interface>',
  ].join('\n') + '\n';
  return `<domain type='qemu'>
  <name>${spec.name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
${nic}    <serial type='pty'/>
    <video><model type='none'/></video>
  </devices>
</domain>
`;
}

export interface LibvirtSessionOptions {
  /** `bridge_helper` in the user's ~/.config/libvirt/qemu.conf (absolute path). */
  readonly bridgeHelper?: string;
  /**
   * The xkvm helper's socket, to be found at the installed socket's path, /run/xkvm/helper.sock,
   * by the session (daemon, bridge helper): every virsh then runs in a private mount namespace
   * whose /run is an overlay of the host's with this socket bound at that path (the host's /run
   * is untouched). With it the bridge helper runs exactly as installed, discovering the socket.
   */
  readonly helperSocket?: string;
  /** Added to virsh's environment (and so the daemon's, which the first virsh starts). */
  readonly env?: Readonly<Record<string, string>>;
  /** Deadline for one virsh command (default 60 s: the first one starts the daemon). */
  readonly timeoutMs?: number;
}

export interface LibvirtSession {
  readonly user: TestUser;
  /** The user's XDG_RUNTIME_DIR (the daemon's sockets and pid files are in `libvirt/`). */
  readonly runtimeDir: string;
  /** `virsh -c qemu:///session ARGS` as the user, in the namespace. */
  virsh(...args: string[]): ExecResult;
  /** The same, throwing with virsh's output unless it exits 0; returns stdout. */
  mustVirsh(...args: string[]): string;
  /** `virsh define` of this XML (written to a file of the user's). */
  define(xml: string): void;
  /** The domain's qemu log (~/.cache/libvirt/qemu/log/NAME.log), '' when there is none. */
  domainLog(name: string): string;
  /** pids of the user's processes in the namespace (the daemon, virtlogd, qemu). */
  processes(): number[];
  /** Kills the user's processes in the namespace, removes the runtime dir and libvirt files. Idempotent. */
  stop(): void;
}

function userFiles(user: TestUser): string[] {
  return [join(user.home, '.config', 'libvirt'), join(user.home, '.cache', 'libvirt'), join(user.home, '.local', 'share', 'libvirt')];
}

/** mkdir -p below the user's home, each new directory owned by the user. */
function mkdirAsUser(user: TestUser, path: string): void {
  if (!path.startsWith(`${user.home}/`)) throw new Error(`${path} is not in ${user.home}`);
  let at = user.home;
  for (const part of path.slice(user.home.length + 1).split('/')) {
    at = join(at, part);
    if (!existsSync(at)) {
      mkdirSync(at, { mode: 0o700 });
      chownSync(at, user.uid, user.gid);
    }
  }
}

/** The installed socket's path (client/src/helper/locate.ts INSTALLED_SOCKET). */
const INSTALLED_SOCKET = '/run/xkvm/helper.sock';

/**
 * Root's part, inside `ip netns exec` (which makes a mount namespace for the command): /run
 * becomes an overlay of the host's /run (a fresh upper layer per run: an upper folder serves
 * one mount at a time) holding an empty run/xkvm/helper.sock, the helper's socket is bound onto
 * it, and the system bus's socket is bound back on top (a socket is reached through an overlay
 * only by its own inode). Then the rest of the argv runs (runuser ... virsh).
 */
const MOUNTS = [
  'set -e',
  'root=$1; socket=$2; shift 2',
  'if [ -d /run/dbus ]; then mount --bind /run/dbus "$root/dbus"; fi',
  'mount -t overlay xkvm-run -o "lowerdir=/run,upperdir=$root/run,workdir=$root/work" /run',
  `mount --bind "$socket" ${INSTALLED_SOCKET}`,
  'if [ -d /run/dbus ]; then mount --bind "$root/dbus" /run/dbus; fi',
  'exec "$@"',
].join('\n');

function privateRun(ns: Netns, argv: readonly string[], o: { user: TestUser; env: Readonly<Record<string, string>>; timeoutMs: number; socket: string; scratch: string; run: number }): ExecResult {
  // The layers live in a root-only folder beside the user's runtime directory.
  const root = `${o.scratch}.mounts/${o.run}`;
  for (const d of ['run/xkvm', 'work', 'dbus']) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
  chmodSync(`${o.scratch}.mounts`, 0o700);
  writeFileSync(join(root, 'run', 'xkvm', 'helper.sock'), '');
  const full = ns.command(argv, { user: o.user.name, env: o.env });
  // [ip, netns, exec, NS, runuser, ...]: root's mounts go between `ip netns exec NS` and runuser.
  const cmd = [...full.slice(0, 4), '/bin/sh', '-c', MOUNTS, 'sh', root, o.socket, ...full.slice(4)];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: '/', encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: o.timeoutMs, killSignal: 'SIGKILL' });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  if (r.error && !timedOut) throw new Error(`cannot run ${cmd.join(' ')}: ${r.error.message}`);
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut };
}

export function startLibvirtSession(ns: Netns, user: TestUser, opts: LibvirtSessionOptions = {}): LibvirtSession {
  if (process.geteuid?.() !== 0) throw new Error('startLibvirtSession needs root (namespaces, runuser)');
  for (const tool of [VIRSH, LIBVIRTD]) {
    if (!existsSync(tool)) throw new Error(`libvirt session tests need ${tool}: run .ci/setup (libvirt-clients, libvirt-daemon)`);
  }
  for (const path of [opts.bridgeHelper, opts.helperSocket]) {
    if (path !== undefined && !SAFE_PATH.test(path)) throw new Error(`bad path ${JSON.stringify(path)}`);
  }
  const runtimeDir = mkdtempSync('/tmp/xkvmt-lvrun-');
  chownSync(runtimeDir, user.uid, user.gid);
  chmodSync(runtimeDir, 0o700);
  if (opts.bridgeHelper !== undefined) {
    const confDir = join(user.home, '.config', 'libvirt');
    mkdirAsUser(user, confDir);
    const conf = join(confDir, 'qemu.conf');
    writeFileSync(conf, `bridge_helper = "${opts.bridgeHelper}"\n`, { mode: 0o600 });
    chownSync(conf, user.uid, user.gid);
  }
  const env = { ...opts.env, XDG_RUNTIME_DIR: runtimeDir };
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let stopped = false;
  let runs = 0;

  const processes = (): number[] => {
    const r = spawnSync(IP, ['netns', 'pids', ns.name], { encoding: 'utf8' });
    if (r.status !== 0) return [];
    return r.stdout.split(/\s+/).filter((w) => w !== '').map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 1 && procUid(pid) === user.uid && isRunning(pid));
  };

  const session: LibvirtSession = {
    user,
    runtimeDir,
    virsh(...args) {
      const argv = [VIRSH, '-c', 'qemu:///session', ...args];
      if (opts.helperSocket === undefined) return ns.exec(argv, { user: user.name, env, cwd: '/', timeoutMs });
      return privateRun(ns, argv, { user, env, timeoutMs, socket: opts.helperSocket, scratch: runtimeDir, run: ++runs });
    },
    mustVirsh(...args) {
      const r = session.virsh(...args);
      if (r.status !== 0) throw new Error(`virsh ${args.join(' ')} failed (${r.status ?? r.signal}${r.timedOut ? ', timed out' : ''}): ${(r.stderr + r.stdout).trim()}`);
      return r.stdout;
    },
    define(xml) {
      const file = join(runtimeDir, `domain-${Date.now()}.xml`);
      writeFileSync(file, xml, { mode: 0o600 });
      chownSync(file, user.uid, user.gid);
      session.mustVirsh('define', file);
      rmSync(file, { force: true });
    },
    domainLog(name) {
      const log = join(user.home, '.cache', 'libvirt', 'qemu', 'log', `${name}.log`);
      return existsSync(log) ? readFileSync(log, 'utf8') : '';
    },
    processes,
    stop() {
      if (stopped) return;
      stopped = true;
      for (const pid of processes()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      rmSync(runtimeDir, { recursive: true, force: true });
      rmSync(`${runtimeDir}.mounts`, { recursive: true, force: true });
      for (const path of userFiles(user)) rmSync(path, { recursive: true, force: true });
    },
  };
  return session;
}
