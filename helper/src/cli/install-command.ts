/** `xkvm-helper install [--group NAME]` and `xkvm-helper uninstall`. */
import { fileURLToPath } from 'node:url';
import { install, uninstall } from '../install/index.js';

const HELPER_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

export async function runInstall(group: string | undefined): Promise<number> {
  // install() prints its own report (what it wrote, and the admin's next steps).
  await install({ ...(group === undefined ? {} : { group }), helperMain: HELPER_MAIN });
  return 0;
}

export async function runUninstall(): Promise<number> {
  uninstall({});
  return 0;
}
