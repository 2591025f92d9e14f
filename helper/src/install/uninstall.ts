import { lstatSync, readFileSync, readdirSync, rmdirSync, rmSync, type Stats } from 'node:fs';
import { basename, dirname } from 'node:path';
import { DEFAULT_CONFIG, DEFAULT_CONFIG_NO_AUDIT_LOG } from './config.js';
import { isGenerated } from './marker.js';
import { DEFAULT_PATHS, type InstallPaths } from './paths.js';
import { requireRoot } from './root.js';

type RemoveOutcome = 'removed' | 'absent' | 'kept';

interface RemovedPath {
  readonly path: string;
  readonly what: string;
  readonly outcome: RemoveOutcome;
  /** Why a path was kept. */
  readonly why?: string;
}

export interface UninstallOptions {
  readonly paths?: InstallPaths;
  /** The effective uid to judge (tests simulate an ordinary user). */
  readonly uid?: number;
  readonly out?: (line: string) => void;
}

export interface UninstallResult {
  readonly paths: readonly RemovedPath[];
  readonly report: readonly string[];
}

function lstat(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Remove `path` if `ours` says install wrote it; otherwise keep it and say why. */
function removeFile(path: string, what: string, ours: (stat: Stats) => string | undefined): RemovedPath {
  const stat = lstat(path);
  if (stat === undefined) return { path, what, outcome: 'absent' };
  const why = ours(stat);
  if (why !== undefined) return { path, what, outcome: 'kept', why };
  rmSync(path);
  return { path, what, outcome: 'removed' };
}

function generated(path: string) {
  return (stat: Stats): string | undefined => {
    if (!stat.isFile()) return 'not a regular file, so not written by xkvm-helper install';
    return isGenerated(readFileSync(path, 'utf8')) ? undefined : 'not written by xkvm-helper install (no install marker)';
  };
}

function removeDir(path: string, what: string, keptWhy: string): RemovedPath {
  const stat = lstat(path);
  if (stat === undefined) return { path, what, outcome: 'absent' };
  if (!stat.isDirectory() || readdirSync(path).length > 0) return { path, what, outcome: 'kept', why: keptWhy };
  rmdirSync(path);
  return { path, what, outcome: 'removed' };
}

/**
 * `xkvm-helper uninstall`: remove the launchers (pkexec's, xkvm-bridge-helper's), the polkit action and rule, the systemd units
 * (and the link `systemctl enable` made), and helper.conf only while it is byte-identical to the
 * default install writes; then the folders install made, if empty. Live sessions' state in the
 * run folder is left alone.
 */
export function uninstall(o: UninstallOptions = {}): UninstallResult {
  const p = o.paths ?? DEFAULT_PATHS;
  requireRoot('uninstall', o.uid);
  const done: RemovedPath[] = [
    removeFile(p.launcher, 'pkexec launcher', generated(p.launcher)),
    removeFile(p.bridgeLauncher, 'xkvm-bridge-helper launcher', generated(p.bridgeLauncher)),
    removeFile(p.action, 'polkit action', generated(p.action)),
    removeFile(p.rule, 'polkit rule', generated(p.rule)),
    removeFile(p.socketEnableLink, 'link made by systemctl enable', (s) =>
      s.isSymbolicLink() ? undefined : 'not a symbolic link, so not made by systemctl enable'),
    removeFile(p.socketUnit, 'systemd socket unit', generated(p.socketUnit)),
    removeFile(p.serviceUnit, 'systemd service unit', generated(p.serviceUnit)),
    removeFile(p.config, 'helper policy', (s) =>
      s.isFile() && [DEFAULT_CONFIG, DEFAULT_CONFIG_NO_AUDIT_LOG].includes(readFileSync(p.config, 'utf8')) ? undefined : 'edited since install wrote it: your policy is kept'),
    removeDir(dirname(p.launcher), 'launcher folder', 'not empty'),
    removeDir(dirname(p.config), 'configuration folder', 'not empty'),
    removeDir(p.logDir, 'audit log folder', 'not empty: it holds audit logs'),
  ];
  const report = ['xkvm-helper uninstall:'];
  for (const r of done) {
    report.push(`  ${r.outcome.padEnd(8)} ${r.path}  ${r.what}${r.why === undefined ? '' : ` (${r.why})`}`);
  }
  if (lstat(p.systemdRunning) !== undefined) {
    report.push('', `Next step: systemctl stop ${basename(p.socketUnit)} ${basename(p.serviceUnit)} && systemctl daemon-reload`);
  }
  for (const line of report) (o.out ?? console.log)(line);
  return { paths: done, report };
}
