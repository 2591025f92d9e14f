/** One line of `xkvm doctor`: what was checked, what was found, and the fix when it is not fine. */
import { escapeForTerminal } from '../../../shared/src/text/escape.js';

type Level = 'ok' | 'warn' | 'fail';

export interface Finding {
  readonly level: Level;
  /** What it is about: `kvm`, `helper`, a bridge name… */
  readonly subject: string;
  readonly text: string;
  /** What to do about it (warn and fail). */
  readonly fix?: string | undefined;
}

const LABEL: Readonly<Record<Level, string>> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

/** `LEVEL subject: text; fix: ...`, escaped: subjects and texts carry names from the system and its users. */
export function formatFinding(f: Finding): string {
  return escapeForTerminal(`${LABEL[f.level]} ${f.subject}: ${f.text}${f.fix === undefined ? '' : `; fix: ${f.fix}`}`);
}
