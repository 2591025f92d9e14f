import { fstatSync } from 'node:fs';

/**
 * Whether stderr is the journal's stream: systemd sets JOURNAL_STREAM=DEV:INODE for a service
 * whose stderr it connects to the journal (systemd.exec(5)). It counts only when fd 2 is that
 * very socket (a child that inherited the variable but not the stream is not).
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const match = /^(\d{1,20}):(\d{1,20})$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (match === null) return false;
  try {
    const stat = fstatSync(2, { bigint: true });
    return stat.dev === BigInt(match[1]!) && stat.ino === BigInt(match[2]!);
  } catch {
    return false;
  }
}
