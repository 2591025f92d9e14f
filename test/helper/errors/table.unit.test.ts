// The helper's one error table: every family's codes to an exit status and a wire code, errors
// recognised by class (a CodedError whose code is in the table), anything else a bug.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import { UsageError } from '../../../helper/src/cli/args.js';
import { PkexecRefusal } from '../../../helper/src/cli/pkexec-guard.js';
import { EXIT, exitStatus, wireCode } from '../../../helper/src/errors/table.js';
import { IdentityError } from '../../../helper/src/identity/errors.js';
import { InstallError, type InstallErrorCode } from '../../../helper/src/install/errors.js';
import { AddonError } from '../../../helper/src/native/addon.js';
import { NetError, type NetErrorCode } from '../../../helper/src/net/errors.js';
import { PolicyError, type PolicyErrorCode } from '../../../helper/src/policy/errors.js';
import { ListenError } from '../../../helper/src/transport/listen.js';
import { UserDbError, type UserDbErrorCode } from '../../../helper/src/userdb/errors.js';

// Records keyed by each family's code type: a code added to a family and missing here does not compile.
const POLICY: Record<PolicyErrorCode, true> = {
  POLICY_SYNTAX: true, POLICY_IO: true, POLICY_INCLUDE_LOOP: true, POLICY_INCLUDE_DEPTH: true, POLICY_UNSAFE_FILE: true,
};
const USERDB: Record<UserDbErrorCode, true> = {
  USERDB_NO_SUCH_UID: true, USERDB_NO_SUCH_USER: true, USERDB_BAD_KEY: true, USERDB_IO: true, USERDB_LOOKUP_FAILED: true,
};
const INSTALL: Record<InstallErrorCode, true> = {
  INSTALL_NOT_ROOT: true, INSTALL_BAD_GROUP: true, INSTALL_UNSAFE_CODE: true, INSTALL_BAD_PATH: true, INSTALL_TEMPLATE: true,
};
const NET: Record<NetErrorCode, true> = {
  BAD_NAME: true, BAD_REQUEST: true, NO_SUCH_BRIDGE: true, NOT_OWNER: true, NO_SUCH_PORT: true, SYSTEM_ERROR: true,
};
const codes = <C extends string>(r: Record<C, true>): C[] => Object.keys(r) as C[];

test('usage mistakes and refusals under pkexec exit 2', () => {
  assert.is(exitStatus(new UsageError('bad')), EXIT.usage);
  assert.is(exitStatus(new PkexecRefusal('only --stdio')), EXIT.usage);
  assert.is(EXIT.usage, 2);
});

test('every policy code exits 3', () => {
  for (const code of codes(POLICY)) assert.is(exitStatus(new PolicyError(code, 'x')), 3, code);
});

test('user database, install, listen, identity, addon and network codes exit 4', () => {
  for (const code of codes(USERDB)) assert.is(exitStatus(new UserDbError(code, 'x')), 4, code);
  for (const code of codes(INSTALL)) assert.is(exitStatus(new InstallError(code, 'x')), 4, code);
  for (const code of codes(NET)) assert.is(exitStatus(new NetError(code, 'x')), 4, code);
  assert.is(exitStatus(new ListenError('in use')), 4);
  assert.is(exitStatus(new IdentityError('who?')), 4);
  assert.is(exitStatus(new AddonError('ADDON_MISSING', 'not built')), 4);
  assert.is(exitStatus(new ProtocolError(ErrorCode.Denied, 'no')), 4);
});

test('anything else is an internal error, 70: plain errors, unknown codes, INTERNAL, non-errors', () => {
  assert.is(exitStatus(new Error('bug')), 70);
  assert.is(exitStatus(new TypeError('bug')), 70);
  assert.is(exitStatus(new CodedError('SOMETHING_NEW', 'x')), 70);
  assert.is(exitStatus(new ProtocolError(ErrorCode.Internal, 'x')), 70);
  assert.is(exitStatus('a string'), 70);
  assert.is(exitStatus(undefined), 70);
  for (const code of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    assert.is(exitStatus(new CodedError(code, 'x')), 70, code);
  }
});

test('errors are recognised by class, not by the look of their code', () => {
  // A Node system error or any object with a code that happens to match is still a bug.
  const fake = Object.assign(new Error('looks like a policy error'), { code: 'POLICY_SYNTAX' });
  assert.is(exitStatus(fake), 70);
  assert.is(exitStatus({ code: 'USAGE', message: 'x' }), 70);
  assert.is(wireCode(Object.assign(new Error('x'), { code: 'DENIED' })), ErrorCode.Internal);
  assert.is(exitStatus(Object.assign(new Error('x'), { code: 'EACCES' })), 70);
});

test('on the wire: protocol and network codes as themselves, identity failures NO_IDENTITY, the rest INTERNAL', () => {
  for (const code of Object.values(ErrorCode)) assert.is(wireCode(new ProtocolError(code, 'x')), code, code);
  for (const code of codes(NET)) assert.is(wireCode(new NetError(code, 'x')), code, code);
  assert.is(wireCode(new IdentityError('who?')), ErrorCode.NoIdentity);
  assert.is(wireCode(new UserDbError('USERDB_NO_SUCH_UID', 'no user')), ErrorCode.NoIdentity);
  for (const code of codes(USERDB).filter((c) => c !== 'USERDB_NO_SUCH_UID')) {
    assert.is(wireCode(new UserDbError(code, 'x')), ErrorCode.Internal, code);
  }
  for (const code of codes(POLICY)) assert.is(wireCode(new PolicyError(code, 'x')), ErrorCode.Internal, code);
  for (const code of codes(INSTALL)) assert.is(wireCode(new InstallError(code, 'x')), ErrorCode.Internal, code);
  for (const error of [new UsageError('x'), new PkexecRefusal('x'), new ListenError('x'), new AddonError('ADDON_MISSING', 'x'),
    new CodedError('SOMETHING_NEW', 'x'), new Error('x'), null]) {
    assert.is(wireCode(error), ErrorCode.Internal, String(error));
  }
});

test('the statuses are the documented ones', () => {
  assert.equal(EXIT, { ok: 0, denied: 1, usage: 2, policy: 3, error: 4, internal: 70 });
});

test.run();
