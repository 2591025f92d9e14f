import { pathToFileURL } from 'node:url';
import { checkedPath } from './checks.js';
import { InstallError } from './errors.js';
import { ACTION_ID } from './action.js';
import { GENERATED_MARKER } from './marker.js';

/** Linux reads at most this many bytes of a `#!` line (BINPRM_BUF_SIZE since 5.1, less the newline). */
const MAX_SHEBANG = 255;

/** `#!<node>` by absolute path, checked to fit a #! line. */
function shebang(nodePath: string): string {
  checkedPath(nodePath, 'the node binary');
  if (/\s/.test(nodePath)) {
    throw new InstallError('INSTALL_BAD_PATH',
      `the node binary ${JSON.stringify(nodePath)} contains white space, which a #! line cannot hold; expected node at a path without spaces`);
  }
  const line = `#!${nodePath}`;
  if (Buffer.byteLength(line) > MAX_SHEBANG) {
    throw new InstallError('INSTALL_BAD_PATH',
      `the node binary's path is too long for a #! line (${Buffer.byteLength(line)} bytes); expected at most ${MAX_SHEBANG}`);
  }
  return line;
}

/**
 * The launcher polkit's action names: `#!<node>` by absolute path (pkexec resets PATH, so no
 * /usr/bin/env; no shell in between), then an import of the helper's compiled main. A dynamic
 * import() works whether node reads this extensionless file as CommonJS or as an ES module.
 * The helper sees `process.argv` = [node, launcher, ...arguments given to pkexec].
 */
export function renderLauncher(nodePath: string, helperMain: string): string {
  checkedPath(helperMain, "the helper's main module");
  return [
    shebang(nodePath),
    `// ${GENERATED_MARKER}; removed by \`xkvm-helper uninstall\`. Do not edit: install rewrites it.`,
    `// pkexec runs this file as root for the polkit action ${ACTION_ID}; it only starts`,
    '// the xkvm helper, which refuses every argument but --stdio when PKEXEC_UID is set.',
    `import(${JSON.stringify(pathToFileURL(helperMain).href)});`,
    '',
  ].join('\n');
}

/**
 * The launcher of xkvm-bridge-helper (qemu's `-netdev bridge,helper=` and libvirt's
 * `bridge_helper`): like the pkexec launcher, but run by ordinary users, never as root, so
 * mode 0755 and no polkit action; it imports the bundled program (dist/bin/xkvm-bridge-helper.cjs).
 */
export function renderBridgeHelperLauncher(nodePath: string, bundle: string): string {
  checkedPath(bundle, 'the bundled xkvm-bridge-helper');
  return [
    shebang(nodePath),
    `// ${GENERATED_MARKER}; removed by \`xkvm-helper uninstall\`. Do not edit: install rewrites it.`,
    '// qemu (-netdev bridge,helper=THIS) and libvirt (bridge_helper = "THIS") run it as the user who',
    '// runs them; it gets a tap from the xkvm helper, under its policy, and hands qemu the fd.',
    `import(${JSON.stringify(pathToFileURL(bundle).href)});`,
    '',
  ].join('\n');
}
