/**
 * The real helper through the real pkexec, for one test user, without the host's installation
 * (root only). A pkexec'd helper takes nothing from its caller: it reads /etc/xkvm/helper.conf,
 * keeps state in /run/xkvm/sessions and sends audit records to /run/systemd/journal/socket. So
 * each run gets a mount namespace of its own (inside `ip netns exec`, which makes one) where
 * /etc and /run are overlays of the host's with this run's files on top: its helper.conf, an
 * empty tmpfs on /run/xkvm, and the test's own datagram socket bound at the journal's path.
 * polkit is the host's real one (system bus and polkitd, test/support/polkit.ts), given an action
 * of this test process (its own id, exec.path = a launcher in a scratch folder) and a rule that
 * lets the one test user run it; both files are removed by `remove()` (and those of test
 * processes that died before removing theirs, by the next run).
 *
 *   const pk = await privatePkexec(ns, user, ['allow br0 ' + user.name]);
 *   const argv = pk.command({ jobControl: false, journal: listener.path });   // root argv to spawn
 *   ...
 *   pk.remove();
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderLauncher } from '../../helper/src/install/launcher.js';
import { HELPER_MAIN } from './helper-proc.js';
import { DEFAULT_PATH, TOOLS, type Netns, type TestUser } from './netns.js';
import { actionKnown, PKEXEC } from './polkit.js';
import { isRunning } from './procs.js';
import { waitFor } from './wait.js';

const ACTIONS = '/usr/share/polkit-1/actions';
const RULES = '/etc/polkit-1/rules.d';

/** Run as root inside the namespace, before the user's part: the private /etc and /run. */
const MOUNTS = [
  'set -e',
  'root=$1; journal=$2; shift 2',
  'mount -t overlay xkvm-etc -o "lowerdir=/etc,upperdir=$root/etc,workdir=$root/etc.work" /etc',
  // A socket is reached through an overlay only by its own inode: the system bus's goes on top.
  'mount --bind /run/dbus "$root/dbus"',
  'mount -t overlay xkvm-run -o "lowerdir=/run,upperdir=$root/run,workdir=$root/run.work" /run',
  'mount --bind "$root/dbus" /run/dbus',
  'mount -t tmpfs -o mode=0755 xkvm-state /run/xkvm',
  'mount --bind "$journal" /run/systemd/journal/socket',
  'exec "$@"',
].join('\n');

export interface PrivatePkexec {
  readonly actionId: string;
  readonly launcher: string;
  /**
   * The root argv that runs, in the namespace and a private mount namespace, as the user: a
   * shell that runs `pkexec LAUNCHER --stdio` as its child, in its own process group, as xkvm
   * does; or, with `jobControl`, a job-control shell (`sh -m`) that runs it as a job, as typed
   * at an interactive prompt, piped into a `sleep` (pkexec, first in the pipeline, leads the
   * job's process group; the sleep shows what the job gets: a ^Z stops it).
   */
  command(opts: { jobControl: boolean; journal: string }): string[];
  remove(): void;
}

/** The action and rule files of test processes that are gone (killed before their clean-up). */
function sweepStale(): void {
  for (const [dir, pattern] of [[ACTIONS, /^org\.xkvm\.test\.p(\d+)\.policy$/], [RULES, /^40-xkvm-test-p(\d+)\.rules$/]] as const) {
    for (const name of readdirSync(dir)) {
      const pid = Number(pattern.exec(name)?.[1] ?? NaN);
      if (Number.isInteger(pid) && pid !== process.pid && !isRunning(pid)) rmSync(join(dir, name), { force: true });
    }
  }
}

export async function privatePkexec(ns: Netns, user: TestUser, policy: readonly string[]): Promise<PrivatePkexec> {
  const dir = mkdtempSync('/tmp/xkvmpk-');
  chmodSync(dir, 0o755);
  const actionId = `org.xkvm.test.p${process.pid}`;
  const action = join(ACTIONS, `${actionId}.policy`);
  const rule = join(RULES, `40-xkvm-test-p${process.pid}.rules`);
  const launcher = join(dir, 'xkvm-helper');
  let runs = 0;
  sweepStale();
  const remove = (): void => {
    rmSync(action, { force: true });
    rmSync(rule, { force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    writeFileSync(launcher, renderLauncher(process.execPath, HELPER_MAIN), { mode: 0o755 });
    writeFileSync(action, [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<!DOCTYPE policyconfig PUBLIC "-//freedesktop//DTD polkit Policy Configuration 1.0//EN" "http://www.freedesktop.org/software/polkit/policyconfig-1.dtd">',
      `<!-- xkvm test process ${process.pid}: removed when it ends -->`,
      '<policyconfig>',
      `  <action id="${actionId}">`,
      '    <description>xkvm helper (test)</description>',
      '    <message>xkvm helper (test)</message>',
      '    <defaults><allow_any>no</allow_any><allow_inactive>no</allow_inactive><allow_active>no</allow_active></defaults>',
      `    <annotate key="org.freedesktop.policykit.exec.path">${launcher}</annotate>`,
      '    <annotate key="org.freedesktop.policykit.exec.argv1">--stdio</annotate>',
      '  </action>',
      '</policyconfig>',
      '',
    ].join('\n'), { mode: 0o644 });
    writeFileSync(rule, [
      `// xkvm test process ${process.pid}: removed when it ends`,
      'polkit.addRule(function (action, subject) {',
      `  if (action.id === ${JSON.stringify(actionId)} && subject.user === ${JSON.stringify(user.name)}) return polkit.Result.YES;`,
      '});',
      '',
    ].join('\n'), { mode: 0o644 });
  } catch (error) {
    remove();
    throw error;
  }

  /** A fresh upper layer for each run: an overlay's upper folder serves one mount at a time. */
  const layers = (): string => {
    runs += 1;
    const root = join(dir, `run${runs}`);
    for (const d of ['etc/xkvm', 'etc.work', 'run/systemd/journal', 'run/xkvm', 'run.work', 'dbus']) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
    writeFileSync(join(root, 'etc/xkvm/helper.conf'), `${policy.join('\n')}\n`, { mode: 0o644 });
    writeFileSync(join(root, 'run/systemd/journal/socket'), '');
    return root;
  };

  const command = (opts: { jobControl: boolean; journal: string }): string[] => [
    TOOLS.ip, 'netns', 'exec', ns.name, TOOLS.sh, '-c', MOUNTS, 'sh', layers(), opts.journal,
    TOOLS.runuser, '-u', user.name, '--', TOOLS.env, '-i', `PATH=${DEFAULT_PATH}`, `HOME=${user.home}`, `USER=${user.name}`, `LOGNAME=${user.name}`, 'LANG=C',
    // pkexec takes its parent for the client: the user's own shell, which waits for it.
    ...(opts.jobControl
      ? [TOOLS.sh, '-m', '-c', 'exec 3>&1; "$@" >&3 3>&- | /bin/sleep 600 3>&-; exit $?']
      : [TOOLS.sh, '-c', '"$@"; exit $?']),
    'sh', PKEXEC, '--disable-internal-agent', launcher, '--stdio',
  ];

  await waitFor(() => actionKnown(actionId), 10_000, { what: `polkitd to know ${actionId}`, intervalMs: 100 });
  // polkitd reads rules when their folder changes: a probe (stdin at its end, so the helper
  // serves nothing and exits 0) says when pkexec lets the user run the launcher.
  const probe = (): { status: number | null; stderr: string } => {
    const argv = command({ jobControl: false, journal: '/dev/null' });
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: r.status, stderr: r.stderr };
  };
  await waitFor(() => probe().status === 0, 15_000, { what: 'pkexec to run the launcher for the test user', intervalMs: 200, describe: () => JSON.stringify(probe()) });
  return { actionId, launcher, command, remove };
}
