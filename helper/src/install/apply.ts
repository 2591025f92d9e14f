import { lstatSync, readFileSync, type Stats } from 'node:fs';
import { ensureDir, writeAtomic, type Owner } from './atomic.js';
import type { InstallPlan, PlannedFile } from './plan.js';

/** created/updated: written now; unchanged: already exactly so; kept: create-only and present. */
type FileOutcome = 'created' | 'updated' | 'unchanged' | 'kept';

interface AppliedFile {
  readonly path: string;
  readonly what: string;
  readonly mode: number;
  readonly outcome: FileOutcome;
}

export interface Applied {
  /** Folders created, outermost first. */
  readonly dirsCreated: readonly string[];
  readonly files: readonly AppliedFile[];
}

function current(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function same(file: PlannedFile, stat: Stats, owner: Owner | undefined): boolean {
  if (!stat.isFile() || (stat.mode & 0o7777) !== file.mode) return false;
  if (owner !== undefined && (stat.uid !== owner.uid || stat.gid !== owner.gid)) return false;
  return readFileSync(file.path, 'utf8') === file.content;
}

/** Carry out a plan: folders first, then each file unless it is already exactly as planned. */
export function applyPlan(plan: InstallPlan, owner?: Owner): Applied {
  const dirsCreated = plan.dirs.flatMap((d) => ensureDir(d.path, d.mode, owner));
  const files = plan.files.map((file): AppliedFile => {
    const stat = current(file.path);
    const done = (outcome: FileOutcome): AppliedFile => ({ path: file.path, what: file.what, mode: file.mode, outcome });
    if (stat !== undefined && file.rule === 'create-only') return done('kept');
    if (stat !== undefined && same(file, stat, owner)) return done('unchanged');
    writeAtomic(file.path, file.content, file.mode, owner);
    return done(stat === undefined ? 'created' : 'updated');
  });
  return { dirsCreated, files };
}
