// toWireError over every error family: what a caller is told, and what only the log gets.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import { UsageError } from '../../../helper/src/cli/args.js';
import { PkexecRefusal } from '../../../helper/src/cli/pkexec-guard.js';
import { IdentityError } from '../../../helper/src/identity/errors.js';
import { InstallError } from '../../../helper/src/install/errors.js';
import { AddonError } from '../../../helper/src/native/addon.js';
import { NetError, type NetErrorCode } from '../../../helper/src/net/errors.js';
import { PolicyError } from '../../../helper/src/policy/errors.js';
import { INTERNAL_MESSAGE, toWireError } from '../../../helper/src/requests/wire-error.js';
import { ListenError } from '../../../helper/src/transport/listen.js';
import { UserDbError } from '../../../helper/src/userdb/errors.js';

function wire(error: unknown): { out: ProtocolError; logged: string[] } {
  const logged: string[] = [];
  return { out: toWireError(error, (m) => logged.push(m)), logged };
}

/** The error goes out as INTERNAL with the fixed message; its details reach the log only. */
function internal(error: unknown, detail: string): void {
  const { out, logged } = wire(error);
  assert.is(out.code, ErrorCode.Internal, String(error));
  assert.is(out.message, INTERNAL_MESSAGE);
  assert.not.ok(out.message.includes(detail), 'the details stay out of the reply');
  assert.is(logged.length, 1);
  assert.ok(logged[0]?.includes(detail), `the log has the details: ${logged[0]}`);
}

test('a ProtocolError goes out as it is, and nothing is logged', () => {
  for (const code of Object.values(ErrorCode)) {
    const error = new ProtocolError(code, `the ${code} message`, { id: 9 });
    const { out, logged } = wire(error);
    assert.is(out, error);
    assert.equal(logged, []);
  }
});

test('a NetError keeps its code and message, and the cause is kept', () => {
  const codes: NetErrorCode[] = ['BAD_NAME', 'BAD_REQUEST', 'NO_SUCH_BRIDGE', 'NOT_OWNER', 'NO_SUCH_PORT', 'SYSTEM_ERROR'];
  for (const code of codes) {
    const error = new NetError(code, `net says ${code}`);
    const { out, logged } = wire(error);
    assert.is(out.code, code);
    assert.is(out.message, `net says ${code}`);
    assert.is(out.cause, error);
    assert.equal(logged, []);
  }
});

test('identity failures are NO_IDENTITY with their message: IdentityError, and a uid that names no user', () => {
  for (const error of [new IdentityError('the client process 42 is gone'), new UserDbError('USERDB_NO_SUCH_UID', 'no user has uid 4242')]) {
    const { out, logged } = wire(error);
    assert.is(out.code, ErrorCode.NoIdentity);
    assert.is(out.message, error.message);
    assert.equal(logged, []);
  }
});

test('the other families are INTERNAL: policy, user database, install, usage, pkexec, listen, addon', () => {
  internal(new PolicyError('POLICY_SYNTAX', '/etc/xkvm/helper.conf:3: secret detail'), 'secret detail');
  internal(new UserDbError('USERDB_LOOKUP_FAILED', 'getent timed out secretly'), 'getent timed out secretly');
  internal(new UserDbError('USERDB_NO_SUCH_USER', 'no user bob'), 'no user bob');
  internal(new InstallError('INSTALL_NOT_ROOT', 'not root detail'), 'not root detail');
  internal(new UsageError('usage detail'), 'usage detail');
  internal(new PkexecRefusal('pkexec detail'), 'pkexec detail');
  internal(new ListenError('listen detail'), 'listen detail');
  internal(new AddonError('ADDON_MISSING', 'addon detail'), 'addon detail');
});

test('errors without a family are INTERNAL, even when their code looks like a protocol code', () => {
  internal(new Error('a plain bug'), 'a plain bug');
  internal(new CodedError('SOMETHING_NEW', 'unknown code'), 'unknown code');
  internal(Object.assign(new Error('node says EACCES'), { code: 'EACCES' }), 'node says EACCES');
  // Recognised by class, not by the look of the code: this is not the policy denying anything.
  internal(Object.assign(new Error('pretends to be DENIED'), { code: 'DENIED' }), 'pretends to be DENIED');
  internal('a thrown string', 'a thrown string');
});

test('the log line gets the stack, escaped: no newline or escape sequence from the error reaches the log', () => {
  const { logged } = wire(new Error('line one\nline two \u001b[2J'));
  const [line] = logged;
  assert.match(line ?? '', /^internal error: Error: line one\\nline two \\e\[2J\\n {4}at /);
  assert.not.match(line ?? '', /[\n\u001b]/);
});

test.run();
