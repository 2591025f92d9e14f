import { dirname } from 'node:path';
import { renderAction } from './action.js';
import { DEFAULT_CONFIG, DEFAULT_CONFIG_NO_AUDIT_LOG } from './config.js';
import { renderBridgeHelperLauncher, renderLauncher } from './launcher.js';
import type { InstallPaths } from './paths.js';
import { renderRule } from './rule.js';
import { renderServiceUnit } from './service-unit.js';
import { renderSocketUnit } from './socket-unit.js';

/** `replace`: written whenever it differs; `create-only`: written only if nothing is there. */
type WriteRule = 'replace' | 'create-only';

export interface PlannedFile {
  readonly path: string;
  /** What it is, for a person. */
  readonly what: string;
  readonly content: string;
  readonly mode: number;
  readonly rule: WriteRule;
}

interface PlannedDir {
  readonly path: string;
  readonly mode: number;
}

/** Everything install would write; computing it touches nothing. */
export interface InstallPlan {
  readonly dirs: readonly PlannedDir[];
  readonly files: readonly PlannedFile[];
}

export interface PlanOptions {
  readonly paths: InstallPaths;
  readonly nodePath: string;
  readonly helperMain: string;
  /** The bundled xkvm-bridge-helper (dist/bin/xkvm-bridge-helper.cjs), or undefined when the checkout has none. */
  readonly bridgeHelper: string | undefined;
  /** A group checked by checkGroup, or undefined for no polkit rule. */
  readonly group: string | undefined;
  /** The text of polkit/org.xkvm.helper.policy.in. */
  readonly actionTemplate: string;
  readonly protectHome: 'yes' | 'read-only';
  /** Whether a new helper.conf names the audit-log in the log folder (false: its parents are not root's alone). */
  readonly auditLogFile: boolean;
}

export function planInstall(o: PlanOptions): InstallPlan {
  const p = o.paths;
  const files: PlannedFile[] = [
    { path: p.launcher, what: 'pkexec launcher', content: renderLauncher(o.nodePath, o.helperMain), mode: 0o755, rule: 'replace' },
    { path: p.action, what: 'polkit action', content: renderAction(o.actionTemplate, p.launcher), mode: 0o644, rule: 'replace' },
  ];
  if (o.bridgeHelper !== undefined) {
    files.splice(1, 0, {
      path: p.bridgeLauncher, what: 'xkvm-bridge-helper launcher (qemu helper=, libvirt bridge_helper)',
      content: renderBridgeHelperLauncher(o.nodePath, o.bridgeHelper), mode: 0o755, rule: 'replace',
    });
  }
  if (o.group !== undefined) {
    files.push({ path: p.rule, what: `polkit rule for group ${o.group}`, content: renderRule(o.group), mode: 0o644, rule: 'replace' });
  }
  files.push(
    { path: p.socketUnit, what: 'systemd socket unit', content: renderSocketUnit(p), mode: 0o644, rule: 'replace' },
    {
      path: p.serviceUnit,
      what: 'systemd service unit',
      content: renderServiceUnit({ paths: p, nodePath: o.nodePath, helperMain: o.helperMain, protectHome: o.protectHome }),
      mode: 0o644,
      rule: 'replace',
    },
    { path: p.config, what: 'helper policy (default deny)', content: o.auditLogFile ? DEFAULT_CONFIG : DEFAULT_CONFIG_NO_AUDIT_LOG, mode: 0o644, rule: 'create-only' },
  );
  // Audit logs hold who did what: readable by root only (and the group root).
  const dirs: PlannedDir[] = [
    ...files.map((f) => ({ path: dirname(f.path), mode: 0o755 })),
    { path: p.logDir, mode: 0o750 },
  ];
  return { dirs: dirs.filter((d, i) => dirs.findIndex((e) => e.path === d.path) === i), files };
}
