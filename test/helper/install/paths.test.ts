import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { INSTALLED_HELPER, INSTALLED_SOCKET, POLKIT_ACTION } from '../../../client/src/helper/locate.js';
import { ACTION_ID } from '../../../helper/src/install/action.js';
import { DEFAULT_PATHS, pathsUnder } from '../../../helper/src/install/paths.js';

test('install puts the launcher and the socket exactly where the client looks for them', () => {
  assert.is(DEFAULT_PATHS.launcher, INSTALLED_HELPER);
  assert.is(DEFAULT_PATHS.socket, INSTALLED_SOCKET);
});

test('install writes the very polkit action the client (xkvm doctor) asks polkit about', () => {
  assert.is(ACTION_ID, POLKIT_ACTION);
});

test('the socket lives in the run folder the service may write', () => {
  assert.ok(DEFAULT_PATHS.socket.startsWith(`${DEFAULT_PATHS.runDir}/`));
});

test('paths under a scratch root keep every default path below that root', () => {
  const rooted = pathsUnder('/tmp/stage');
  for (const [key, path] of Object.entries(rooted)) {
    assert.is(path, `/tmp/stage${DEFAULT_PATHS[key as keyof typeof DEFAULT_PATHS]}`, key);
  }
});

test.run();
