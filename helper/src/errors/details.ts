import { escapeForTerminal } from '../../../shared/src/text/escape.js';

/** What the log gets about an unexpected error: its stack (or whatever was thrown), escaped onto one line. */
export function errorDetails(error: unknown): string {
  return escapeForTerminal(error instanceof Error ? error.stack ?? error.message : String(error));
}
