import { lstatSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import type { CodeLayout } from './code-trees.js';

/** One file or folder that a non-root user could change, and how to fix it. */
export interface CodeProblem {
  readonly path: string;
  readonly problem: string;
  readonly fix: string;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/**
 * Everything root would execute (the layout's trees, recursively, following symlinks wherever
 * they lead; the node binary) must be owned by root and not writable by group or others, and so
 * must every folder above it up to / (a sticky folder like /tmp is acceptable above, never
 * inside). Returns every problem found, an empty list when all is safe.
 */
export function unsafeCode(layout: CodeLayout, nodePath: string): CodeProblem[] {
  const problems: CodeProblem[] = [];
  const seen = new Set<string>();
  const fixFor = (path: string): string => {
    const root = layout.checkout !== undefined && within(path, layout.checkout) ? layout.checkout : undefined;
    return root !== undefined
      ? `chown -R root:root ${root} && chmod -R go-w ${root}`
      : `chown root:root ${path} && chmod go-w ${path}`;
  };
  const check = (path: string, stat: Stats, above: boolean): void => {
    let problem: string | undefined;
    if (stat.uid !== 0) problem = `owned by uid ${stat.uid}, not root`;
    else if (!stat.isSymbolicLink() && (stat.mode & 0o022) !== 0 && !(above && (stat.mode & 0o1000) !== 0)) {
      problem = `writable by group or others (mode ${octal(stat.mode)})`;
    }
    if (problem !== undefined) problems.push({ path, problem, fix: fixFor(path) });
  };
  const ancestors = (path: string): void => {
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      if (!seen.has(`above:${dir}`)) {
        seen.add(`above:${dir}`);
        check(dir, statSync(dir), true);
      }
      if (dirname(dir) === dir) return;
    }
  };
  const walk = (path: string): void => {
    if (seen.has(path)) return;
    seen.add(path);
    const stat = lstatSync(path);
    check(path, stat, false);
    if (stat.isSymbolicLink()) {
      let target: string;
      try {
        target = realpathSync(path);
      } catch {
        return; // a dangling link runs nothing
      }
      ancestors(target);
      walk(target);
    } else if (stat.isDirectory()) {
      for (const name of readdirSync(path)) walk(join(path, name));
    }
  };
  for (const tree of layout.trees) {
    ancestors(tree);
    ancestors(realpathSync(tree));
    walk(tree);
  }
  ancestors(nodePath);
  walk(nodePath);
  return problems;
}
