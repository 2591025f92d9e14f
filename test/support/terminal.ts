/**
 * A command run as the foreground job of a real terminal, as when someone types it in a shell:
 * a small Python driver (root) opens a pseudo-terminal; its child makes a new session whose
 * controlling terminal is that pty (setsid, TIOCSCTTY) and, as a login shell would, runs `argv`
 * as its foreground job, in a process group of its own (tcsetpgrp), and waits for it. A hangup
 * ends that session leader, and the kernel then sends SIGHUP to the foreground job. The
 * command's stdin, stdout and stderr stay this process's pipes: only job control comes from the
 * terminal.
 *
 *   const t = inTerminal(argv);
 *   t.typeSuspend();     // ^Z typed on the terminal: the line discipline sends SIGTSTP to its foreground job
 *   t.hangUp();          // the terminal goes away (its master side closes): SIGHUP, as when a window closes
 *
 * Both are asked of the driver by signal (SIGUSR1, SIGUSR2); it drains what the terminal prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { signal } from './procs.js';

const PYTHON = '/usr/bin/python3';

const DRIVER = `
import fcntl, os, select, signal, sys, termios, time
master, slave = os.openpty()
pid = os.fork()
if pid == 0:
    # The terminal's session leader, as a login shell: the command is its foreground job, in a
    # process group of its own (a group whose parent is in another group of the session, so that
    # the terminal's stop signals apply to it). A hangup ends the leader (SIGHUP, default action),
    # and the kernel then sends SIGHUP to the foreground job.
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    os.close(master)
    job = os.fork()
    if job == 0:
        os.setpgid(0, 0)
        os.close(slave)
        os.execv(sys.argv[1], sys.argv[1:])
    os.setpgid(job, job)
    os.tcsetpgrp(slave, job)
    _, status = os.waitpid(job, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xff)
state = {'master': master, 'reading': True}
def suspend(signum, frame):
    if state['master'] is not None:
        os.write(state['master'], b'\\x1a')
def hang_up(signum, frame):
    if state['master'] is not None:
        os.close(state['master'])
        state['master'] = None
signal.signal(signal.SIGUSR1, suspend)
signal.signal(signal.SIGUSR2, hang_up)
# Drain what the terminal prints (echoes), until the session leader ends.
while True:
    fd = state['master']
    if fd is not None and state['reading']:
        try:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                os.read(fd, 4096)
        except OSError:
            state['reading'] = False
        except ValueError:
            pass
    else:
        time.sleep(0.05)
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(os.waitstatus_to_exitcode(status) & 0xff)
`;

export interface InTerminal {
  readonly child: ChildProcess;
  /** The driver's pid; its only child leads the terminal's session, the command is that one's child. */
  readonly pid: number;
  /** ^Z typed on the terminal. */
  typeSuspend(): void;
  /** The terminal goes away (hangup). */
  hangUp(): void;
}

/** Run `argv` (absolute program path first) as the foreground job of a new terminal. */
export function inTerminal(argv: readonly string[]): InTerminal {
  const child = spawn(PYTHON, ['-c', DRIVER, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error('the terminal driver did not start');
  const pid = child.pid;
  return {
    child,
    pid,
    typeSuspend: () => signal(pid, 'SIGUSR1'),
    hangUp: () => signal(pid, 'SIGUSR2'),
  };
}
