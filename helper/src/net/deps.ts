import { systemRunner, type Runner } from './runner.js';
import { randomTapName } from './tapname.js';

/**
 * What the operations need from the outside world. Production uses the defaults; tests pass
 * replacements through `NetOptions.deps` to count the processes a request spawns, to interpose
 * a failure between two steps, or to force a name collision. Nothing else sets it.
 */
export interface NetDeps {
  /** Runs one program (see runner.ts). */
  readonly run: Runner;
  /** A fresh candidate tap name; it is validated like any other name before use. */
  readonly tapName: () => string;
}

export const defaultDeps: NetDeps = Object.freeze({ run: systemRunner, tapName: randomTapName });

export function resolveDeps(deps: Partial<NetDeps> | undefined): NetDeps {
  if (deps === undefined) return defaultDeps;
  return { run: deps.run ?? defaultDeps.run, tapName: deps.tapName ?? defaultDeps.tapName };
}
