/**
 * A real systemd, as PID 1, in a container: a minimal Debian 12 tree built by mmdebstrap (cached
 * between runs) booted with systemd-nspawn, the checkout bound in read-only at /opt/xkvm (not
 * under /tmp: the helper's unit has PrivateTmp=yes) and the host's node at /usr/bin/node (same
 * Debian libraries). Inside, a oneshot unit runs the suite's steps, one bash script each, in
 * order, then powers the container off; every step writes what it saw into a results folder
 * bound in from the host, read back after the container is gone.
 *
 * The tree: /var/cache/xkvm-test/rootfs-<hash of suite, variant and package list>, built once
 * into a temporary folder beside it (`.build-<pid>-*`, removed when the build fails, or by the
 * next build once that pid is gone) and renamed into place only when mmdebstrap succeeded (a
 * failed or partial build is never taken for the cache), then only ever booted with
 * `--volatile=overlay` (a tmpfs over it: nothing a run does reaches the cache). Anything missing
 * (not root, no mmdebstrap or systemd-nspawn, no Debian mirror) throws, saying what and how to fix
 * it: the suite fails, it never skips.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CACHE_DIR = '/var/cache/xkvm-test';
const SUITE = 'bookworm';
const VARIANT = 'minbase';
/**
 * What the steps need beyond minbase: systemd as init, dbus (systemctl's and polkit's bus),
 * iproute2 (the helper's ip), polkitd and pkexec (install writes polkit files; the pkexec
 * launcher), procps, passwd (useradd).
 */
const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'iproute2', 'polkitd', 'pkexec', 'procps', 'passwd'] as const;
/** Where the checkout appears inside (a service must see it: not under /tmp or /var/tmp). */
export const CHECKOUT_INSIDE = '/opt/xkvm';
const RESULTS_INSIDE = '/xkvm-results';
const STEPS_INSIDE = '/xkvm-test';
const UNIT = 'xkvm-test.service';

/** The checkout this suite was compiled from (dist/test/support/ is three folders below it). */
const CHECKOUT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');

function which(program: string): boolean {
  return ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((dir) => existsSync(join(dir, program)));
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove what builds killed midway left (their process is gone); a running build's is kept. */
function sweepDeadBuilds(): void {
  for (const name of readdirSync(CACHE_DIR)) {
    const pid = /^\.build-(\d+)-/.exec(name)?.[1];
    if (pid !== undefined && !running(Number(pid))) rmSync(join(CACHE_DIR, name), { recursive: true, force: true });
  }
}

/** The cached tree's path, built first if there is none (saying how long that took). */
export function debianTree(log: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): string {
  if (process.getuid?.() !== 0) throw new Error('the real-systemd suite needs root (mmdebstrap, systemd-nspawn)');
  for (const [program, pkg] of [['mmdebstrap', 'mmdebstrap'], ['systemd-nspawn', 'systemd-container']] as const) {
    if (!which(program)) throw new Error(`${program} is not installed: run \`sudo bash .ci/setup\` (it installs ${pkg})`);
  }
  const key = createHash('sha256').update(JSON.stringify([SUITE, VARIANT, PACKAGES])).digest('hex').slice(0, 16);
  const path = join(CACHE_DIR, `rootfs-${key}`);
  if (existsSync(join(path, 'usr/lib/systemd/systemd'))) return path;
  mkdirSync(CACHE_DIR, { recursive: true, mode: 0o755 });
  sweepDeadBuilds();
  const work = mkdtempSync(join(CACHE_DIR, `.build-${process.pid}-`));
  chmodSync(work, 0o755); // apt's sandbox user must reach the tree
  const started = Date.now();
  try {
    const build = spawnSync('mmdebstrap', [`--variant=${VARIANT}`, `--include=${PACKAGES.join(',')}`, SUITE, join(work, 'rootfs')], {
      encoding: 'utf8', maxBuffer: 64 << 20,
    });
    if (build.error !== undefined || build.status !== 0) {
      const why = build.error?.message ?? `exit ${build.status ?? build.signal}`;
      throw new Error(`mmdebstrap could not build the Debian ${SUITE} tree (${why}); its output:\n${(build.stderr ?? '').slice(-4000)}`);
    }
    try {
      renameSync(join(work, 'rootfs'), path);
    } catch (error) {
      // Another run built it meanwhile: take theirs.
      if (!existsSync(join(path, 'usr/lib/systemd/systemd'))) throw error;
    }
    const builtInMs = Date.now() - started;
    log(`# built the Debian ${SUITE} tree for the container in ${(builtInMs / 1000).toFixed(1)} s: ${path} (kept for later runs)`);
    return path;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** One step: a bash script run as root inside the container, after the ones before it. */
export interface Step {
  /** Names its results: letters, digits and dashes. */
  readonly name: string;
  readonly script: string;
}

/** What one `record KEY CMD...` in a step saw. */
export interface Recorded {
  readonly out: string;
  readonly err: string;
  /** The command's exit status. */
  readonly status: number;
}

export interface Boot {
  /** systemd-nspawn's own output (why a container did not boot; the container has no console). */
  readonly console: string;
  /** How nspawn ended. */
  readonly exit: string;
  /** The container's journal of the boot, as the steps left it (empty if they never finished). */
  readonly journal: string;
  /** Everything the steps recorded, one file after another (to read when something failed). */
  readonly dump: string;
  /** Whether every step ran to its end. */
  readonly finished: boolean;
  /** What `record KEY ...` saw in STEP; throws, naming the console's tail, when it never ran. */
  recorded(step: string, key: string): Recorded;
}

/**
 * Sourced by every step: `record KEY CMD...` runs CMD and keeps its stdout, stderr and status for
 * the host (CMD may be a function); `wait_until SECONDS CMD...` polls CMD until it succeeds
 * (status 1 when the deadline passes); `xkvm-helper` and `xkvm` on PATH run the checkout's programs
 * (/usr/local/bin wrappers);
 * `as_user U CMD...` runs CMD as U (runuser, a login-like environment without
 * XKVM_HELPER_SOCKET). Steps share state through files in /run/xkvm-test.
 */
const PRELUDE = String.raw`
R=${RESULTS_INSIDE}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
unset XKVM_HELPER_SOCKET
mkdir -p /run/xkvm-test
wrap() {
  printf '#!/bin/sh\nexec /usr/bin/node ${CHECKOUT_INSIDE}/%s "$@"\n' "$2" > "/usr/local/bin/$1"
  chmod 755 "/usr/local/bin/$1"
}
wrap xkvm-helper dist/helper/src/main.js
wrap xkvm dist/bin/xkvm.cjs
as_user() { local u=$1; shift; runuser -u "$u" -- env -i PATH="$PATH" HOME="/home/$u" USER="$u" LOGNAME="$u" "$@"; }
record() {
  local key=$1; shift
  "$@" > "$R/$STEP.$key.out" 2> "$R/$STEP.$key.err"
  echo $? > "$R/$STEP.$key.status"
}
wait_until() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.2
  done
}
`;

const RUNNER = String.raw`#!/bin/bash
# Runs each step in order (a step's failure is recorded; the next still runs), then powers off.
for s in ${STEPS_INSIDE}/steps/*.sh; do
  name=$(basename "$s" .sh | cut -d- -f2-)
  echo "xkvm-test: step $name"
  STEP=$name bash -c 'source ${STEPS_INSIDE}/prelude.sh; source "$0"' "$s" > ${RESULTS_INSIDE}/$name.step.out 2>&1
  echo $? > ${RESULTS_INSIDE}/$name.step.status
  echo "xkvm-test: step $name ended with status $(cat ${RESULTS_INSIDE}/$name.step.status)"
done
touch ${RESULTS_INSIDE}/finished
journalctl -b --no-pager -o short-monotonic > ${RESULTS_INSIDE}/journal 2>&1
# Not SuccessAction=poweroff: under Debian 12's systemd that left the container running.
systemctl poweroff --no-block
`;

const UNIT_FILE = `[Unit]
Description=xkvm real-systemd test steps
After=basic.target dbus.service systemd-journald.service
[Service]
Type=oneshot
ExecStart=/bin/bash ${STEPS_INSIDE}/run.sh
StandardOutput=journal
TimeoutStartSec=infinity
FailureAction=poweroff-force
`;

/**
 * Boot the tree with the steps, wait until the container is gone (powered off by the steps'
 * unit, or killed at `deadlineMs`), and return what the steps recorded. The container, its
 * overlay and the temporary folders are gone when this returns or throws.
 */
export async function bootWithSteps(tree: string, steps: readonly Step[], deadlineMs: number): Promise<Boot> {
  const work = mkdtempSync(join(tmpdir(), 'xkvm-nspawn-'));
  try {
    const stepsDir = join(work, 'test');
    const results = join(work, 'results');
    mkdirSync(join(stepsDir, 'steps'), { recursive: true });
    mkdirSync(results);
    steps.forEach((step, i) => {
      if (!/^[a-z0-9-]+$/.test(step.name)) throw new Error(`bad step name ${step.name}`);
      writeFileSync(join(stepsDir, 'steps', `${String(i).padStart(2, '0')}-${step.name}.sh`), step.script);
    });
    writeFileSync(join(stepsDir, 'prelude.sh'), PRELUDE);
    writeFileSync(join(stepsDir, 'run.sh'), RUNNER);
    writeFileSync(join(stepsDir, UNIT), UNIT_FILE);
    const args = [
      '--quiet', `--directory=${tree}`, '--volatile=overlay', '--register=no', '--keep-unit', '--console=pipe',
      '--private-network', `--machine=xkvm-test-${process.pid}`,
      `--bind-ro=${process.execPath}:/usr/bin/node`,
      `--bind-ro=${CHECKOUT}:${CHECKOUT_INSIDE}`,
      `--bind-ro=${stepsDir}:${STEPS_INSIDE}`,
      `--bind-ro=${join(stepsDir, UNIT)}:/etc/systemd/system/${UNIT}`,
      `--bind=${results}:${RESULTS_INSIDE}`,
      '--boot', '--', `systemd.wants=${UNIT}`,
    ];
    for (const path of [CHECKOUT, process.execPath, work]) {
      if (path.includes(':')) throw new Error(`${path} has a colon, which systemd-nspawn's --bind takes as a separator: move it`);
    }
    const child = spawn('systemd-nspawn', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    // Should this process end early, the container goes with it.
    const killOnExit = (): void => void child.kill('SIGKILL');
    process.once('exit', killOnExit);
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk; });
    let killed = false;
    const timers: NodeJS.Timeout[] = [];
    timers.push(setTimeout(() => {
      killed = true;
      child.kill('SIGTERM');
      timers.push(setTimeout(() => child.kill('SIGKILL'), 15_000));
    }, deadlineMs));
    let exit: string;
    try {
      exit = await new Promise<string>((resolve) => {
        child.on('error', (error) => resolve(`could not run systemd-nspawn: ${error.message}`));
        child.on('close', (code, sig) => resolve(sig !== null ? `killed by ${sig}` : `exit ${code ?? '?'}`));
      });
    } finally {
      process.removeListener('exit', killOnExit);
      for (const t of timers) clearTimeout(t);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (killed) exit += ` (the steps did not finish within ${deadlineMs / 1000} s, so it was stopped)`;
    const files = new Map(readdirSync(results).map((name) => [name, readFileSync(join(results, name), 'utf8')]));
    const tail = (): string => output.split('\n').slice(-60).join('\n');
    return {
      console: output,
      journal: files.get('journal') ?? '',
      dump: [...files].filter(([name]) => name !== 'journal').map(([name, text]) => `==> ${name} <==\n${text}`).join('\n'),
      exit,
      finished: files.has('finished'),
      recorded: (step, key) => {
        const status = files.get(`${step}.${key}.status`);
        if (status === undefined) {
          throw new Error(`step ${step} recorded no ${key} (container: ${exit}; step output: ${files.get(`${step}.step.out`) ?? 'none, it never ran'})\nconsole tail:\n${tail()}`);
        }
        return { out: files.get(`${step}.${key}.out`) ?? '', err: files.get(`${step}.${key}.err`) ?? '', status: Number(status.trim()) };
      },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
