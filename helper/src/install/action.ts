import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkedPath } from './checks.js';
import { InstallError } from './errors.js';
import { isGenerated } from './marker.js';

/** The one polkit action: running the helper through pkexec (rules name it). */
export const ACTION_ID = 'org.xkvm.helper.run';

/** The placeholder the template holds where the launcher's path goes. */
const LAUNCHER_PLACEHOLDER = '@LAUNCHER@';

/** polkit/org.xkvm.helper.policy.in in the checkout this module was compiled into. */
export const ACTION_TEMPLATE = fileURLToPath(new URL('../../../../polkit/org.xkvm.helper.policy.in', import.meta.url));

export function readActionTemplate(path: string = ACTION_TEMPLATE): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new InstallError('INSTALL_TEMPLATE',
      `cannot read the polkit action template ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}); expected the polkit/ folder of the xkvm checkout`,
      { cause: err });
  }
}

function xmlText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The action file: the template with the launcher's absolute path in the exec.path annotation. */
export function renderAction(template: string, launcher: string): string {
  checkedPath(launcher, 'the launcher');
  const parts = template.split(LAUNCHER_PLACEHOLDER);
  if (parts.length !== 2 || !template.includes(`<action id="${ACTION_ID}">`) || !isGenerated(template)) {
    throw new InstallError('INSTALL_TEMPLATE',
      `the polkit action template is not the expected one; expected one ${LAUNCHER_PLACEHOLDER}, the action ${ACTION_ID} and the install marker`);
  }
  return parts.join(xmlText(launcher));
}
