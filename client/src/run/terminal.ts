/** The user's terminal: raw mode while qemu owns the console, restored however we leave. */
export interface TerminalState {
  interactive: boolean;
  size(): { cols: number; rows: number };
  restore(): void;
}

export function takeTerminal(): TerminalState {
  const stdin = process.stdin;
  const interactive = Boolean(stdin.isTTY && process.stdout.isTTY);
  let raw = false;
  if (interactive) {
    stdin.setRawMode(true);
    raw = true;
  }
  const restore = (): void => {
    if (raw) {
      raw = false;
      try {
        stdin.setRawMode(false);
        // Firmware consoles (SeaBIOS) turn off auto-wrap; give the user's terminal it back.
        process.stdout.write('\x1b[?7h');
      } catch {
        // terminal already gone
      }
    }
  };
  // Restore even on an unexpected exit.
  process.once('exit', restore);
  return {
    interactive,
    size: () => ({ cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 }),
    restore,
  };
}
