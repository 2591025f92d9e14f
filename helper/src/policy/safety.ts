import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Whether a policy file may be trusted. The policy grants root-level authority (who may put
 * taps on bridges), so by default a file is used only if it is owned by root, not writable by
 * group or others, and every directory above it (as written and after resolving symlinks) is
 * owned by root and not writable by group or others (unless sticky, like /tmp). Returns what is
 * wrong, or undefined if the file is acceptable. Non-regular files are refused before any check.
 */
export type FileCheck = (path: string, stat: Stats) => string | undefined;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function directoryProblem(dir: string): string | undefined {
  let stat: Stats;
  try {
    stat = statSync(dir);
  } catch (err) {
    return `its directory ${dir} cannot be checked (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
  if (stat.uid !== 0) return `its directory ${dir} is owned by uid ${stat.uid}, not root`;
  const sticky = (stat.mode & 0o1000) !== 0;
  if ((stat.mode & 0o022) !== 0 && !sticky) {
    return `its directory ${dir} is writable by group or others (mode ${octal(stat.mode)})`;
  }
  return undefined;
}

function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    out.push(dir);
    if (dirname(dir) === dir) return out;
  }
}

/**
 * The directories above `path`, as written and after resolving symlinks: each owned by root and
 * not writable by group or others (unless sticky, like /tmp). What is wrong, or undefined.
 */
function ancestorsProblem(path: string): string | undefined {
  const written = resolve(path);
  let real: string;
  try {
    real = realpathSync(written);
  } catch (err) {
    return `its real path cannot be resolved (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
  for (const dir of new Set([...ancestors(written), ...ancestors(real)])) {
    const problem = directoryProblem(dir);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** The default check, used unless a caller passes another. */
export const requireRootOwnedFile: FileCheck = (path, stat) => {
  if (stat.uid !== 0) return `it is owned by uid ${stat.uid}, not root`;
  if ((stat.mode & 0o022) !== 0) return `it is writable by group or others (mode ${octal(stat.mode)})`;
  return ancestorsProblem(path);
};

/**
 * Whether root may keep state in `dir` (session records, the ledger and its per-uid locks) or create files in it
 * (the audit log): it must be a directory, not a symbolic link, owned by root and writable by
 * root alone, and the directories above it must pass the policy file's check. What is wrong,
 * or undefined when it is fit.
 */
export function trustedDirectoryProblem(dir: string): string | undefined {
  let stat: Stats;
  try {
    stat = lstatSync(dir);
  } catch (err) {
    return `it cannot be checked (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
  if (stat.isSymbolicLink()) return 'it is a symbolic link';
  if (!stat.isDirectory()) return 'it is not a directory';
  if (stat.uid !== 0) return `it is owned by uid ${stat.uid}, not root`;
  if ((stat.mode & 0o022) !== 0) return `it is writable by group or others (mode ${octal(stat.mode)})`;
  return ancestorsProblem(dir);
}

/**
 * Whether root may create directories in `dir` (an existing directory): it passes the check
 * of a policy file's directories (sticky ones allowed: what is created there is checked after).
 */
export function parentDirectoryProblem(dir: string): string | undefined {
  return directoryProblem(dir) ?? ancestorsProblem(dir);
}
