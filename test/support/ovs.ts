// Open vSwitch with the userspace datapath (no kernel module), private to one test, running in a
// network namespace (root only):
//
//   const ns = createNetns();
//   const ovs = startOvs(ns, { bridges: ['ovsbr0', 'ovsbr1'] });
//   try { ... ovs.vsctl('list-br') ... } finally { ovs.stop(); ns.destroy(); }
//
// ovsdb-server and ovs-vswitchd run inside the namespace (`ip netns exec`), so the bridges
// (datapath_type=netdev: tap devices made by ovs-vswitchd) and the ports' devices live there;
// all their files (database, sockets, pidfiles, logs) live in a fresh directory under /tmp.
// Anyone can reach the database at `ovs.db` (`unix:DIR/db.sock`) from any namespace.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Netns } from './netns.js';

export const OVS_TOOLS = {
  vsctl: '/usr/bin/ovs-vsctl',
  dbTool: '/usr/bin/ovsdb-tool',
  dbServer: '/usr/sbin/ovsdb-server',
  vswitchd: '/usr/sbin/ovs-vswitchd',
  ofctl: '/usr/bin/ovs-ofctl',
  schema: '/usr/share/openvswitch/vswitch.ovsschema',
} as const;

export interface Ovs {
  readonly dir: string;
  /** For ovs-vsctl --db= (and the policy's `ovsdb`). */
  readonly db: string;
  /** `ovs-vsctl --db=DB --timeout=10 args...` as root; throws with its stderr on failure; returns stdout. */
  vsctl(...args: string[]): string;
  /** The ports of an OVS bridge. */
  ports(bridge: string): string[];
  /** The OpenFlow flows of an OVS bridge without their counters (`ovs-ofctl --no-stats dump-flows`), one a line. */
  flows(bridge: string): string[];
  /** Kills both daemons (by pidfile) and removes the directory. Idempotent. */
  stop(): void;
}

/** Names of the Open vSwitch programs missing here (empty when all are present). */
function missingOvsTools(): string[] {
  return Object.values(OVS_TOOLS).filter((p) => !existsSync(p));
}

function mustRun(file: string, args: readonly string[], env?: Record<string, string>): string {
  const r = spawnSync(file, args, {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000, killSignal: 'SIGKILL',
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', ...env },
  });
  if (r.error) throw new Error(`cannot run ${file}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${[file, ...args].join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

export function startOvs(ns: Netns, opts: { bridges?: readonly string[] } = {}): Ovs {
  const missing = missingOvsTools();
  if (missing.length > 0) throw new Error(`Open vSwitch is not installed: missing ${missing.join(', ')}`);
  // short: unix socket paths are limited to 107 bytes
  const dir = mkdtempSync('/tmp/xkvmovs-');
  const env = { OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
  const db = `unix:${dir}/db.sock`;
  let stopped = false;

  const inNs = (argv: string[]): void => {
    const r = ns.exec(argv, { env, timeoutMs: 30_000 });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  };
  const ovs: Ovs = {
    dir,
    db,
    vsctl: (...args) => mustRun(OVS_TOOLS.vsctl, [`--db=${db}`, '--timeout=10', ...args]),
    ports: (bridge) => mustRun(OVS_TOOLS.vsctl, [`--db=${db}`, '--timeout=10', 'list-ports', bridge]).split('\n').filter((l) => l !== ''),
    flows: (bridge) => mustRun(OVS_TOOLS.ofctl, ['--no-stats', 'dump-flows', `unix:${dir}/${bridge}.mgmt`]).split('\n').filter((l) => l.includes('actions=')),
    stop() {
      if (stopped) return;
      stopped = true;
      for (const daemon of ['ovs-vswitchd', 'ovsdb-server']) {
        try {
          const pid = Number(readFileSync(`${dir}/${daemon}.pid`, 'utf8').trim());
          if (Number.isInteger(pid) && pid > 1) process.kill(pid, 'SIGTERM');
        } catch {
          // not started, or gone already
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    mustRun(OVS_TOOLS.dbTool, ['create', `${dir}/conf.db`, OVS_TOOLS.schema]);
    inNs([OVS_TOOLS.dbServer, `--remote=punix:${dir}/db.sock`, '--pidfile', '--detach', '--log-file', `${dir}/conf.db`]);
    ovs.vsctl('--no-wait', 'init');
    inNs([OVS_TOOLS.vswitchd, '--pidfile', '--detach', '--log-file']);
    for (const br of opts.bridges ?? []) ovs.vsctl('add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev');
  } catch (e) {
    ovs.stop();
    throw e;
  }
  return ovs;
}
