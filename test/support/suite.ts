/**
 * uvu's `test`, with hooks that cannot fail silently. Every suite imports `test` from here, not
 * from 'uvu'.
 *
 * uvu 0.5.6 runs the hooks inside a try whose `finally` returns, so an exception thrown by a
 * `test.before` hook vanishes: the suite reports "0 / 7" and no message at all. Here a failing
 * `before` hook is remembered and printed once with its stack, the remaining set-up hooks
 * (`before`, `before.each`) are skipped, and every test of the suite then fails with
 * "suite setup failed: <message>" (the original error as its cause). A failing `after` or
 * `after.each` hook is printed and makes the process exit non-zero (test/run.mjs counts that as a
 * failure), after the other clean-up hooks still ran.
 */
import { test as uvuTest, type Callback, type Test } from 'uvu';

type Context = Parameters<Callback>[0];

let setupFailure: Error | undefined;
let teardownFailed = false;

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function report(what: string, error: Error): void {
  process.stderr.write(`${what}: ${error.stack ?? error.message}\n`);
}

process.on('exit', () => {
  if (teardownFailed) process.exitCode = 1;
});

function guarded(handler: Callback): Callback {
  return async (context: Context) => {
    if (setupFailure !== undefined) {
      throw new Error(`suite setup failed: ${setupFailure.message}`, { cause: setupFailure });
    }
    await handler(context);
  };
}

function setupHook(hook: Callback): Callback {
  return async (context: Context) => {
    if (setupFailure !== undefined) return;
    try {
      await hook(context);
    } catch (error) {
      setupFailure = asError(error);
      report('suite setup failed', setupFailure);
    }
  };
}

function teardownHook(hook: Callback): Callback {
  return async (context: Context) => {
    try {
      await hook(context);
    } catch (error) {
      teardownFailed = true;
      report('suite clean-up failed', asError(error));
    }
  };
}

const wrapped = ((name: string, handler: Callback) => uvuTest(name, guarded(handler))) as Test;
wrapped.only = (name: string, handler: Callback) => uvuTest.only(name, guarded(handler));
wrapped.skip = (...args: Parameters<Test['skip']>) => uvuTest.skip(...args);
wrapped.before = Object.assign((hook: Callback) => uvuTest.before(setupHook(hook)), {
  // uvu reports a failing before.each as that test's failure; after a failed set-up it is skipped.
  each: (hook: Callback) => uvuTest.before.each(async (context: Context) => {
    if (setupFailure === undefined) await hook(context);
  }),
});
wrapped.after = Object.assign((hook: Callback) => uvuTest.after(teardownHook(hook)), {
  each: (hook: Callback) => uvuTest.after.each(teardownHook(hook)),
});
wrapped.run = () => uvuTest.run();

export const test: Test = wrapped;
