/** The client's stderr voice: every line prefixed "xkvm: ", levels gated by -v. */
export interface Logger {
  verbosity: number;
  info(message: string): void;
  debug(level: number, message: string): void;
}

export function stderrLogger(verbosity: number): Logger {
  return {
    verbosity,
    info: (message) => process.stderr.write(`xkvm: ${message}\n`),
    debug(level, message) {
      if (level <= verbosity) process.stderr.write(`xkvm: ${message}\n`);
    },
  };
}
