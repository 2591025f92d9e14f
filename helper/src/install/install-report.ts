import type { Applied } from './apply.js';
import type { InstallPaths } from './paths.js';

export interface ReportContext {
  readonly paths: InstallPaths;
  readonly group: string | undefined;
  readonly systemdRunning: boolean;
  /** Things the admin should know (ProtectHome relaxed, an unsafe existing helper.conf …). */
  readonly notes: readonly string[];
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/** What install did, then what the admin does next, as lines for a terminal. */
export function installReport(applied: Applied, ctx: ReportContext): string[] {
  const p = ctx.paths;
  const lines = ['xkvm-helper install:'];
  for (const dir of applied.dirsCreated) lines.push(`  created    ${dir}/`);
  for (const f of applied.files) {
    const extra = f.outcome === 'kept' ? ' (exists: left as it is)' : ` (${octal(f.mode)})`;
    lines.push(`  ${f.outcome.padEnd(10)} ${f.path}  ${f.what}${extra}`);
  }
  if (ctx.notes.length > 0) lines.push('', 'Notes:', ...ctx.notes.map((n) => `  - ${n}`));
  const who = ctx.group === undefined ? '@kvm' : `@${ctx.group}`;
  const next = [
    ctx.systemdRunning
      ? 'systemctl daemon-reload && systemctl enable --now xkvm-helper.socket'
      : `systemd is not PID 1 here (no ${p.systemdRunning}), so socket activation is not available: clients will run ` +
        `\`pkexec ${p.launcher} --stdio\`. The units are in place for when the host runs systemd.`,
    `Allow bridges in ${p.config} (nothing is allowed by default), e.g. add the line:  allow br0 ${who}`,
    ctx.group === undefined
      ? 'pkexec now asks for an administrator\'s password (active local sessions only); to let a group use the ' +
        'helper without one, run: xkvm-helper install --group NAME'
      : `Members of ${ctx.group} may now start the helper through pkexec without a password (polkit reads group membership at each check).`,
    'Check a decision: xkvm-helper policy check --user USER --bridge br0',
  ];
  lines.push('', 'Next steps:', ...next.map((n, i) => `  ${i + 1}. ${n}`));
  return lines;
}
