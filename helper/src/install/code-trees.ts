import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * What root executes when it runs the helper from a checkout: the main module and its folder, the
 * compiled helper and shared code, the native addon, the dependencies, and package.json (its
 * "type" and "imports" decide how and what node loads). Missing entries are left out.
 */
export interface CodeLayout {
  /** The folder holding package.json above the main module, if there is one. */
  readonly checkout: string | undefined;
  /** Files and folders (checked with everything under them). */
  readonly trees: readonly string[];
}

const CHECKOUT_CODE = ['package.json', 'dist/helper', 'dist/shared', 'helper/native/build', 'node_modules'] as const;

function findCheckout(file: string): string | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

export function codeLayout(helperMain: string): CodeLayout {
  const main = realpathSync(helperMain);
  const checkout = findCheckout(main);
  // The main as written too: the launcher imports that path, symlinks and all.
  const candidates = [helperMain, dirname(main), ...(checkout === undefined ? [] : CHECKOUT_CODE.map((p) => join(checkout, p)))];
  return { checkout, trees: [...new Set(candidates.filter((p) => existsSync(p)))] };
}
