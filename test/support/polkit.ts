/**
 * Real polkit for system tests, as environment.md shows (root only): a system bus
 * (`dbus-daemon --system`) and polkitd, each started only if none answers; `stop()` ends
 * exactly what this call started, by pid, and leaves /run/dbus as it found it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, rmSync } from 'node:fs';
import { isRunning } from './procs.js';
import { waitFor } from './wait.js';

const DBUS_DAEMON = '/usr/bin/dbus-daemon';
const DBUS_SEND = '/usr/bin/dbus-send';
const POLKITD = '/usr/lib/polkit-1/polkitd';
export const PKEXEC = '/usr/bin/pkexec';
const PKACTION = '/usr/bin/pkaction';
const DBUS_RUN_DIR = '/run/dbus';
const DBUS_PID_FILE = `${DBUS_RUN_DIR}/pid`;
const DBUS_SOCKET = `${DBUS_RUN_DIR}/system_bus_socket`;

function quiet(file: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function missingPolkitTools(): string[] {
  return [DBUS_DAEMON, DBUS_SEND, POLKITD, PKEXEC, PKACTION].filter((p) => !existsSync(p));
}

function busAnswers(): boolean {
  return quiet(DBUS_SEND, ['--system', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus',
    'org.freedesktop.DBus.GetId']).status === 0;
}

function polkitOnBus(): boolean {
  const r = quiet(DBUS_SEND, ['--system', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus',
    'org.freedesktop.DBus.NameHasOwner', 'string:org.freedesktop.PolicyKit1']);
  return r.status === 0 && /boolean true/.test(r.stdout);
}

/** Whether polkitd knows the action (it re-reads its action folder when it changes). */
export function actionKnown(id: string): boolean {
  return quiet(PKACTION, ['--action-id', id]).status === 0;
}

export interface Polkit {
  /** What this call started (empty when both were running already). */
  readonly started: readonly string[];
  stop(): Promise<void>;
}

export async function startPolkit(): Promise<Polkit> {
  const missing = missingPolkitTools();
  if (missing.length > 0) throw new Error(`polkit is not installed: missing ${missing.join(', ')} (apt-get install polkitd pkexec dbus)`);
  const ours: Array<{ name: string; pid: number }> = [];
  let madeRunDir = false;
  const stop = async (): Promise<void> => {
    for (const { name, pid } of ours.reverse()) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
      // PID 1 here may not reap: a zombie counts as gone.
      await waitFor(() => !isRunning(pid), 5000, { what: `${name} (pid ${pid}) to exit` });
      if (name === 'dbus-daemon') for (const f of [DBUS_PID_FILE, DBUS_SOCKET]) rmSync(f, { force: true });
    }
    ours.length = 0;
    if (madeRunDir) rmdirSync(DBUS_RUN_DIR);
    madeRunDir = false;
  };
  /**
   * Our own child (not forked away to PID 1, which here reaps only later): when it ends, this
   * process reaps it at once.
   */
  const daemon = async (name: string, file: string, args: readonly string[], ready: () => boolean): Promise<void> => {
    const child = spawn(file, args, { detached: true, stdio: 'ignore' });
    child.unref();
    if (child.pid === undefined) throw new Error(`${name} did not start`);
    const pid = child.pid;
    ours.push({ name, pid });
    await waitFor(ready, 10_000, { what: `${name} to answer on the system bus`, intervalMs: 50, describe: () => (isRunning(pid) ? `${name} runs` : `${name} exited`) });
  };
  try {
    if (!busAnswers()) {
      // /run/dbus is made at boot where systemd runs (tmpfiles); dbus-daemon does not make it
      if (!existsSync(DBUS_RUN_DIR)) {
        mkdirSync(DBUS_RUN_DIR, { mode: 0o755 });
        madeRunDir = true;
      }
      rmSync(DBUS_PID_FILE, { force: true }); // stale: nothing answers
      await daemon('dbus-daemon', DBUS_DAEMON, ['--system', '--nofork'], busAnswers);
    }
    if (!polkitOnBus()) await daemon('polkitd', POLKITD, ['--no-debug'], polkitOnBus);
  } catch (error) {
    // nothing this call started outlives its failure
    await stop();
    throw error;
  }
  return { started: ours.map((o) => `${o.name} (pid ${o.pid})`), stop };
}
