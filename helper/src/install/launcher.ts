import { pathToFileURL } from 'node:url';
import { checkedPath } from './checks.js';
import { InstallError } from './errors.js';
import { ACTION_ID } from './action.js';
import { GENERATED_MARKER } from './marker.js';

/** Linux reads at most this many bytes of a `#!` line (BINPRM_BUF_SIZE since 5.1, less the newline). */
const MAX_SHEBANG = 255;

/**
 * The launcher polkit's action names: `#!<node>` by absolute path (pkexec resets PATH, so no
 * /usr/bin/env; no shell in between), then an import of the helper's compiled main. A dynamic
 * import() works whether node reads this extensionless file as CommonJS or as an ES module.
 * The helper sees `process.argv` = [node, launcher, ...arguments given to pkexec].
 */
export function renderLauncher(nodePath: string, helperMain: string): string {
  checkedPath(nodePath, 'the node binary');
  checkedPath(helperMain, "the helper's main module");
  if (/\s/.test(nodePath)) {
    throw new InstallError('INSTALL_BAD_PATH',
      `the node binary ${JSON.stringify(nodePath)} contains white space, which a #! line cannot hold; expected node at a path without spaces`);
  }
  const shebang = `#!${nodePath}`;
  if (Buffer.byteLength(shebang) > MAX_SHEBANG) {
    throw new InstallError('INSTALL_BAD_PATH',
      `the node binary's path is too long for a #! line (${Buffer.byteLength(shebang)} bytes); expected at most ${MAX_SHEBANG}`);
  }
  return [
    shebang,
    `// ${GENERATED_MARKER}; removed by \`xkvm-helper uninstall\`. Do not edit: install rewrites it.`,
    `// pkexec runs this file as root for the polkit action ${ACTION_ID}; it only starts`,
    '// the xkvm helper, which refuses every argument but --stdio when PKEXEC_UID is set.',
    `import(${JSON.stringify(pathToFileURL(helperMain).href)});`,
    '',
  ].join('\n');
}
