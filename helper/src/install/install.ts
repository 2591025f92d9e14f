import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parentDirectoryProblem, requireRootOwnedFile } from '../policy/safety.js';
import type { GetentRunner } from '../userdb/getent.js';
import { ACTION_TEMPLATE, readActionTemplate } from './action.js';
import { applyPlan, type Applied } from './apply.js';
import { checkedPath } from './checks.js';
import { unsafeCode } from './code-safety.js';
import { codeLayout } from './code-trees.js';
import { InstallError } from './errors.js';
import { checkGroup } from './group.js';
import { underHome, underTmp } from './hidden-paths.js';
import { installReport } from './install-report.js';
import { DEFAULT_PATHS, type InstallPaths } from './paths.js';
import { planInstall } from './plan.js';
import { requireRoot } from './root.js';

export interface InstallOptions {
  /** `--group NAME`: write a polkit rule letting NAME's members run the helper without a password. */
  readonly group?: string;
  readonly paths?: InstallPaths;
  /** The node binary the launcher and the service run (default: this process's). */
  readonly nodePath?: string;
  /** The helper's compiled main module (absolute), e.g. <checkout>/dist/helper/src/main.js. */
  readonly helperMain: string;
  /** The effective uid to judge (tests simulate an ordinary user). */
  readonly uid?: number;
  /** How to look the group up (tests). */
  readonly getent?: GetentRunner;
  /** polkit/org.xkvm.helper.policy.in. */
  readonly actionTemplate?: string;
  /** Where the report goes, a line at a time. */
  readonly out?: (line: string) => void;
}

export interface InstallResult extends Applied {
  readonly notes: readonly string[];
  readonly report: readonly string[];
}

const MAX_LISTED = 10;

function refuseUnsafe(problems: ReturnType<typeof unsafeCode>): never {
  const listed = problems.slice(0, MAX_LISTED).map((p) => `  ${p.path}: ${p.problem}`);
  if (problems.length > MAX_LISTED) listed.push(`  … and ${problems.length - MAX_LISTED} more`);
  const fixes = [...new Set(problems.map((p) => p.fix))].map((f) => `  ${f}`);
  throw new InstallError('INSTALL_UNSAFE_CODE', [
    'refusing to install: root would run code that users other than root can change:',
    ...listed,
    'expected the helper\'s code, its modules and node to be owned by root and writable only by root. Fix with:',
    ...fixes,
  ].join('\n'));
}

/**
 * `xkvm-helper install [--group NAME]`: check everything first (root, the group, the code root
 * would run), then write the launcher, the polkit action (and rule), the systemd units and, if
 * absent, a default-deny helper.conf. Idempotent: a second run reports every file unchanged.
 * Throws InstallError, having written nothing, when a check fails.
 */
export async function install(o: InstallOptions): Promise<InstallResult> {
  const paths = o.paths ?? DEFAULT_PATHS;
  requireRoot('install', o.uid);
  const nodePath = checkedPath(o.nodePath ?? process.execPath, 'the node binary');
  const helperMain = checkedPath(o.helperMain, "the helper's main module");
  if (!existsSync(helperMain)) {
    throw new InstallError('INSTALL_BAD_PATH', `the helper's main module ${helperMain} does not exist; expected a built checkout (run the build first)`);
  }
  if (!existsSync(nodePath)) {
    throw new InstallError('INSTALL_BAD_PATH', `the node binary ${nodePath} does not exist; expected the node that should run the helper`);
  }
  const group = o.group === undefined ? undefined : await checkGroup(o.group, o.getent);
  const layout = codeLayout(helperMain);
  const code = [helperMain, nodePath, ...(layout.checkout === undefined ? [] : [layout.checkout])];
  const hidden = underTmp(code);
  if (hidden.length > 0) {
    throw new InstallError('INSTALL_BAD_PATH', `refusing to install: the service runs with PrivateTmp=yes, which gives it an empty /tmp and /var/tmp, ` +
      `so it could not load ${hidden.join(', ')} and would fail at every start ("Cannot find module"). ` +
      'Put the checkout (and node) where services can see it, e.g. /opt/xkvm or /usr/local/lib/xkvm, build it there and run install from it.');
  }
  const problems = unsafeCode(layout, nodePath);
  if (problems.length > 0) refuseUnsafe(problems);

  const notes: string[] = [];
  const exposed = underHome(code);
  if (exposed.length > 0) {
    notes.push(`under /home, /root or /run/user: ${exposed.join(', ')}. The service therefore uses ProtectHome=read-only ` +
      'instead of ProtectHome=yes (which would hide the code). Install from a checkout under /opt or /usr/local to hide home folders.');
  }
  // The helper trusts an audit-log only in a folder root alone can change, parents included
  // (install makes the log folder itself; the nearest folder above it that exists is judged).
  let logParent = dirname(paths.logDir);
  while (!existsSync(logParent) && dirname(logParent) !== logParent) logParent = dirname(logParent);
  const logParentProblem = parentDirectoryProblem(logParent);
  // The bundled xkvm-bridge-helper beside the helper's code (npm run build makes both).
  const bundle = layout.checkout === undefined ? undefined : join(layout.checkout, 'dist', 'bin', 'xkvm-bridge-helper.cjs');
  const bridgeHelper = bundle !== undefined && existsSync(bundle) ? bundle : undefined;
  if (bridgeHelper === undefined) {
    notes.push(`no ${bundle ?? 'dist/bin/xkvm-bridge-helper.cjs (no checkout above the main module)'}: ${paths.bridgeLauncher} was not written ` +
      '(qemu\'s helper= and libvirt\'s bridge_helper need it); run `npm run build` in the checkout and install again.');
  }
  const plan = planInstall({
    paths, nodePath, helperMain, group, bridgeHelper,
    actionTemplate: readActionTemplate(o.actionTemplate ?? ACTION_TEMPLATE),
    protectHome: exposed.length > 0 ? 'read-only' : 'yes',
    auditLogFile: logParentProblem === undefined,
  });
  const applied = applyPlan(plan, { uid: 0, gid: 0 });
  if (logParentProblem !== undefined && applied.files.some((f) => f.path === paths.config && f.outcome === 'created')) {
    notes.push(`${paths.config} has no audit-log line: the helper would refuse ${paths.logDir}/audit.log, because ${logParentProblem}. ` +
      'Records still go to stderr (the journal under systemd) and, from pkexec\'d helpers, to the system log. ' +
      `To audit to a file too, make the folders above ${paths.logDir} root's alone and uncomment the line.`);
  }

  const configProblem = existsSync(paths.config) ? checkConfig(paths.config) : undefined;
  if (configProblem !== undefined) notes.push(`${paths.config}: ${configProblem}; the helper will refuse to start until it is fixed.`);
  if (group === undefined && existsSync(paths.rule)) {
    notes.push(`${paths.rule} (from an earlier install --group) was left as it is; uninstall or delete it to withdraw it.`);
  }
  const report = installReport(applied, { paths, group, systemdRunning: existsSync(paths.systemdRunning), notes });
  for (const line of report) (o.out ?? console.log)(line);
  return { ...applied, notes, report };
}

function checkConfig(path: string): string | undefined {
  try {
    return requireRootOwnedFile(path, statSync(path));
  } catch (err) {
    return `cannot be checked (${(err as Error).message})`;
  }
}
