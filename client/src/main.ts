#!/usr/bin/env node
/** Entry point of `xkvm`: the unprivileged launcher. Only re-routes; the work is elsewhere. */
import { ClientError } from './errors.js';
import { escapeForTerminal } from '../../shared/src/text/escape.js';

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'doctor') {
    const { doctor } = await import('./doctor/doctor.js');
    return doctor(argv.slice(1));
  }
  if (argv[0] === 'tap-control') {
    const { tapControl } = await import('./tap-control.js');
    return tapControl(argv.slice(1));
  }
  const { launch } = await import('./launch.js');
  return launch(argv, 'xkvm');
}

const verbose = process.argv.slice(2).some((a) => a === '-v' || a === '--verbose' || /^-v+$/.test(a));
main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    if (error instanceof ClientError) {
      process.stderr.write(`xkvm: ${escapeForTerminal(error.message)}\n`);
      if (verbose && error.cause !== undefined) process.stderr.write(`xkvm: cause: ${escapeForTerminal(String(error.cause))}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(`xkvm: internal error: ${escapeForTerminal(error instanceof Error ? error.message : String(error))}\n`);
    if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    process.exitCode = 70;
  },
);
