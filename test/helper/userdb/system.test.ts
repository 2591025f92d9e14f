import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { systemGetent } from '../../../helper/src/userdb/getent.js';
import { userByName, userByUid } from '../../../helper/src/userdb/resolve.js';
import { userDbError } from './support.js';

test('on this system uid 0 is root with the root group first', async () => {
  const root = await userByUid(0);
  assert.is(root.name, 'root');
  assert.is(root.gid, 0);
  assert.is(root.groups[0], 'root');
});

test('on this system the name root resolves to uid 0', async () => {
  const root = await userByName('root');
  assert.is(root.uid, 0);
  assert.ok(root.groups.includes('root'));
});

test('on this system a uid no one has is an error after asking getent', async () => {
  const err = await userDbError(() => userByUid(3_999_999_999));
  assert.is(err.code, 'USERDB_NO_SUCH_UID');
  assert.ok(err.message.includes('or getent passwd'), err.message);
});

test('the real getent answers by absolute path and reads a key like --help as a key', async () => {
  const getent = systemGetent();
  assert.ok((await getent('passwd', ['root'])).startsWith('root:x:0:0:'));
  assert.is(await getent('passwd', ['--help']), '');
  assert.ok((await getent('group', ['0'])).startsWith('root:'));
});

test('a getent that cannot run is a lookup failure, not "no such user"', async () => {
  const err = await userDbError(() => userByUid(3_999_999_999, { getent: systemGetent('/nonexistent/getent') }));
  assert.is(err.code, 'USERDB_LOOKUP_FAILED');
  assert.ok(err.message.startsWith('/nonexistent/getent passwd 3999999999 failed: '), err.message);
});

test.run();
