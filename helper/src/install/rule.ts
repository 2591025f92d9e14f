import { ACTION_ID } from './action.js';
import { GENERATED_MARKER } from './marker.js';

/**
 * The polkit rule `install --group NAME` writes: members of NAME may run the helper through
 * pkexec without a password, from any session (local, remote, inactive). It grants nothing
 * else: which bridges they may use is helper.conf's decision. `group` must have been checked
 * (see checkGroup); it is quoted as a JavaScript string all the same.
 */
export function renderRule(group: string): string {
  return [
    `/* ${GENERATED_MARKER} --group ${group}; removed by \`xkvm-helper uninstall\`.`,
    ` * Members of the group ${group} may start the xkvm helper through pkexec without a password.`,
    ' * What they may then do (which bridges) is decided by /etc/xkvm/helper.conf, default deny.',
    ' * Rules must be ECMAScript 5 (polkit(8)). Edits are lost on the next install --group. */',
    'polkit.addRule(function (action, subject) {',
    `    if (action.id == ${JSON.stringify(ACTION_ID)} && subject.isInGroup(${JSON.stringify(group)})) {`,
    '        return polkit.Result.YES;',
    '    }',
    '});',
    '',
  ].join('\n');
}
