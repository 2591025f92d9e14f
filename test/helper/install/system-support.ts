/** Real polkit for the system test: a system bus and polkitd (started only if not running), test users. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const DBUS_PID_FILE = '/run/dbus/pid';
const DBUS_SOCKET = '/run/dbus/system_bus_socket';

function run(cmd: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function must(cmd: string, args: readonly string[]): string {
  const r = run(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function busAnswers(): boolean {
  return run('dbus-send', ['--system', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus',
    'org.freedesktop.DBus.GetId']).status === 0;
}

function polkitOnBus(): boolean {
  const r = run('dbus-send', ['--system', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus',
    'org.freedesktop.DBus.NameHasOwner', 'string:org.freedesktop.PolicyKit1']);
  return r.status === 0 && /boolean true/.test(r.stdout);
}

export interface Daemons {
  readonly started: string[];
  stop(): Promise<void>;
}

/** Gone, or a zombie nobody reaps (PID 1 here is not an init). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** A system bus and polkitd, as environment.md shows; what this call started, `stop()` ends (by pid). */
export async function startPolkit(): Promise<Daemons> {
  const pids: Array<{ name: string; pid: number }> = [];
  if (!busAnswers()) {
    if (existsSync(DBUS_PID_FILE)) rmSync(DBUS_PID_FILE); // stale: no bus answers
    const out = must('dbus-daemon', ['--system', '--fork', '--print-pid']);
    pids.push({ name: 'dbus-daemon', pid: Number(out.trim()) });
    await until('the system bus', busAnswers);
  }
  if (!polkitOnBus()) {
    const child = spawn('/usr/lib/polkit-1/polkitd', ['--no-debug'], { detached: true, stdio: 'ignore' });
    child.unref();
    if (child.pid === undefined) throw new Error('polkitd did not start');
    pids.push({ name: 'polkitd', pid: child.pid });
    await until('polkitd on the system bus', polkitOnBus);
  }
  return {
    started: pids.map((p) => `${p.name} (pid ${p.pid})`),
    stop: async () => {
      for (const { name, pid } of pids.reverse()) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
        await until(`${name} (pid ${pid}) to exit`, () => gone(pid), 5000);
        // dbus-daemon leaves its pid file and socket behind: leave /run/dbus as we found it.
        if (name === 'dbus-daemon') for (const f of [DBUS_PID_FILE, DBUS_SOCKET]) rmSync(f, { force: true });
      }
    },
  };
}

export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

function passwd(name: string): TestUser | undefined {
  const r = run('getent', ['passwd', name]);
  if (r.status !== 0) return undefined;
  const [, , uid, gid] = r.stdout.trim().split(':');
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** Create the group and users (system accounts, no home, no shell) unless they exist. */
export function ensureUsers(group: string, members: readonly string[], others: readonly string[]): TestUser[] {
  if (run('getent', ['group', group]).status !== 0) must('/usr/sbin/groupadd', ['--system', group]);
  return [...members, ...others].map((name) => {
    if (passwd(name) === undefined) {
      must('/usr/sbin/useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin',
        ...(members.includes(name) ? ['--groups', group] : []), name]);
    }
    const user = passwd(name);
    if (user === undefined) throw new Error(`user ${name} missing after useradd`);
    return user;
  });
}

export function removeUsers(group: string, names: readonly string[]): void {
  for (const name of names) run('/usr/sbin/userdel', [name]);
  run('/usr/sbin/groupdel', [group]);
}

/** `PID,START_TIME,UID` for pkcheck --process (start time: field 22 of /proc/PID/stat). */
export function processSpec(pid: number, uid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return `${pid},${fields[19]},${uid}`;
}

export function procUid(pid: number): number | undefined {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}
