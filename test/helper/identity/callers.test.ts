// Who the caller is when the helper runs on stdio by hand: its own real uid, never root for want of one.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { directStdioCaller } from '../../../helper/src/identity/callers.js';
import { IdentityError } from '../../../helper/src/identity/errors.js';

test('directStdioCaller is whoever ran the helper: its real uid, that user, its parent process', async () => {
  const caller = await directStdioCaller();
  assert.is(caller.uid, process.getuid?.());
  assert.is(caller.user.uid, caller.uid);
  assert.is(caller.pid, process.ppid);
  assert.is(caller.transport, 'stdio');
});

test('without a real uid to read, directStdioCaller refuses (NO_IDENTITY) instead of taking the caller for root', async () => {
  const getuid = Object.getOwnPropertyDescriptor(process, 'getuid');
  Object.defineProperty(process, 'getuid', { value: undefined, configurable: true, writable: true });
  try {
    const error = await directStdioCaller().then(() => undefined, (e: unknown) => e);
    assert.instance(error, IdentityError);
    assert.is((error as IdentityError).code, 'NO_IDENTITY');
    assert.match((error as Error).message, /cannot tell who ran the helper/);
  } finally {
    if (getuid !== undefined) Object.defineProperty(process, 'getuid', getuid);
  }
  assert.type(process.getuid, 'function');
});

test.run();
