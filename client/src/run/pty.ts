/**
 * Run qemu in a pseudo-terminal and relay its console. On a terminal: raw mode and window-size
 * changes forwarded. Without one: output relayed, piped input forwarded. SIGINT, SIGTERM and
 * SIGHUP stop qemu (SIGTERM, then SIGKILL after a grace period); the result is qemu's status,
 * or 128+N when qemu died of signal N or we stopped it because we received signal N.
 */
import type { IPty } from 'node-pty';
import { closeFds, setCloseOnExec } from '../native/fdpass.js';
import { takeTerminal } from './terminal.js';

export interface PtyRunOptions {
  graceMs?: number;
  onSignal?: (signal: NodeJS.Signals) => void;
  /** Called right after qemu has started. */
  onStart?: (pid: number) => void;
  /**
   * fds qemu inherits at the same numbers (its taps, handed over): FD_CLOEXEC is cleared on
   * exactly these just before the spawn (node-pty keeps every fd without it), and our copies
   * are closed right after, whether the spawn worked or not: they are then qemu's alone.
   */
  inheritFds?: readonly number[];
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

export async function runInPty(argv: readonly string[], options: PtyRunOptions = {}): Promise<number> {
  const pty = await import('node-pty');
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('runInPty: empty argv');
  const terminal = takeTerminal();
  const { cols, rows } = terminal.size();
  let child: IPty;
  const inherit = options.inheritFds ?? [];
  try {
    for (const fd of inherit) setCloseOnExec(fd, false);
    child = pty.spawn(file, args, {
      name: process.env['TERM'] || 'xterm-256color',
      cols,
      rows,
      cwd: process.cwd(),
      env: process.env as Record<string, string>,
      // Bytes in, bytes out: no decoding, so the console relay is exact (and cheaper).
      encoding: null,
    });
  } catch (error) {
    terminal.restore();
    throw error;
  } finally {
    closeFds(inherit);
  }
  options.onStart?.(child.pid);

  const stdin = process.stdin;
  const onInput = (data: Buffer): void => child.write(data);
  const onResize = (): void => {
    const size = terminal.size();
    child.resize(size.cols, size.rows);
  };
  let stopSignal: NodeJS.Signals | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    options.onSignal?.(signal);
    if (stopSignal !== undefined) {
      child.kill('SIGKILL');
      return;
    }
    stopSignal = signal;
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), options.graceMs ?? 5000);
  };

  // With encoding null, node-pty hands out Buffers (its typings say string).
  const output = child.onData((data: string | Buffer) => {
    process.stdout.write(data);
  });
  if (terminal.interactive || !stdin.isTTY) {
    stdin.on('data', onInput);
    stdin.resume();
  }
  if (terminal.interactive) process.stdout.on('resize', onResize);
  for (const s of SIGNALS) process.on(s, onSignal);

  const result = await new Promise<{ exitCode: number; signal: number | undefined }>((resolve) => {
    child.onExit(({ exitCode, signal }) => resolve({ exitCode, signal: signal || undefined }));
  });

  if (killTimer !== undefined) clearTimeout(killTimer);
  for (const s of SIGNALS) process.off(s, onSignal);
  process.stdout.off('resize', onResize);
  stdin.off('data', onInput);
  stdin.pause();
  output.dispose();
  terminal.restore();

  if (stopSignal !== undefined) return 128 + (SIGNAL_NUMBERS[stopSignal] ?? 15);
  if (result.signal !== undefined) return 128 + result.signal;
  return result.exitCode;
}
