import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { userByName, userBySpec, userByUid } from '../../../helper/src/userdb/resolve.js';
import { GROUP, PASSWD, fakeGetent, fixture, userDbError } from './support.js';

test('a uid from the fixture files resolves to name, gid and every group', async () => {
  const f = fixture();
  try {
    assert.equal(await userByUid(1000, { ...f.options, getent: null }),
      { name: 'alice', uid: 1000, gid: 1000, groups: ['alice', 'kvm', 'staff'] });
  } finally {
    f.done();
  }
});

test('a user name from the fixture files resolves the same way (first entry wins)', async () => {
  const f = fixture();
  try {
    assert.equal(await userByName('alice', { ...f.options, getent: null }),
      { name: 'alice', uid: 1000, gid: 1000, groups: ['alice', 'kvm', 'staff'] });
    assert.equal((await userByName('bob', { ...f.options, getent: null })).groups, ['bob', 'kvm', 'students']);
  } finally {
    f.done();
  }
});

test('a primary gid without a group entry is left out of the names', async () => {
  const f = fixture();
  try {
    const user = await userByUid(1002, { ...f.options, getent: null });
    assert.is(user.gid, 4242);
    assert.equal(user.groups, ['staff']);
  } finally {
    f.done();
  }
});

test('a uid with no user entry is a clear typed error', async () => {
  const f = fixture();
  try {
    const err = await userDbError(() => userByUid(4711, { ...f.options, getent: null }));
    assert.is(err.code, 'USERDB_NO_SUCH_UID');
    assert.is(err.message, `uid 4711 has no user entry (looked in ${f.options.passwdFile}); expected the uid of an existing user`);
  } finally {
    f.done();
  }
});

test('an unknown name is a clear typed error', async () => {
  const f = fixture();
  try {
    const err = await userDbError(() => userByName('mallory', { ...f.options, getent: null }));
    assert.is(err.code, 'USERDB_NO_SUCH_USER');
    assert.ok(err.message.startsWith('no user is named "mallory"'), err.message);
  } finally {
    f.done();
  }
});

test('impossible uids and names are refused before any lookup', async () => {
  const getent = fakeGetent({});
  for (const uid of [-1, 1.5, 0xffff_ffff, Number.NaN]) {
    assert.is((await userDbError(() => userByUid(uid, { getent: getent.run }))).code, 'USERDB_BAD_KEY');
  }
  for (const name of ['', 'a:b', 'a\nb', '1000']) {
    assert.is((await userDbError(() => userByName(name, { getent: getent.run }))).code, 'USERDB_BAD_KEY');
  }
  assert.equal(getent.calls, []);
});

test('a spec of digits is a uid, anything else a name', async () => {
  const f = fixture();
  try {
    assert.is((await userBySpec('1001', { ...f.options, getent: null })).name, 'bob');
    assert.is((await userBySpec('bob', { ...f.options, getent: null })).uid, 1001);
  } finally {
    f.done();
  }
});

test('a user not in the files is looked up through getent, with groups from initgroups', async () => {
  const f = fixture('group: files sss\n');
  const nss = fakeGetent({
    passwd: { 5000: 'ldapuser:*:5000:5000:LDAP user:/home/ldapuser:/bin/bash\n' },
    initgroups: { ldapuser: 'ldapuser              106 7000\n' },
    group: { 5000: 'ldapusers:*:5000:\n', 7000: 'vmadmins:*:7000:ldapuser\n' },
  });
  try {
    const user = await userByUid(5000, { ...f.options, getent: nss.run });
    assert.equal(user, { name: 'ldapuser', uid: 5000, gid: 5000, groups: ['ldapusers', 'kvm', 'vmadmins'] });
    assert.equal(nss.calls, ['passwd 5000', 'initgroups ldapuser', 'group 5000 106 7000']);
  } finally {
    f.done();
  }
});

test('a user getent does not know either is still a clear error', async () => {
  const f = fixture();
  const nss = fakeGetent({});
  try {
    const err = await userDbError(() => userByName('ghost', { ...f.options, getent: nss.run }));
    assert.is(err.code, 'USERDB_NO_SUCH_USER');
    assert.ok(err.message.includes(`looked in ${f.options.passwdFile} or getent passwd`), err.message);
    assert.equal(nss.calls, ['passwd ghost']);
  } finally {
    f.done();
  }
});

test('a files user also gets directory groups when nsswitch names a directory source', async () => {
  const f = fixture('passwd: files sss\ngroup:   files [SUCCESS=merge] sss # comment\n');
  const nss = fakeGetent({ initgroups: { alice: 'alice   106 7000\n' }, group: { 7000: 'blocked:*:7000:alice\n' } });
  try {
    const user = await userByUid(1000, { ...f.options, getent: nss.run });
    assert.equal(user.groups, ['alice', 'kvm', 'staff', 'blocked']);
  } finally {
    f.done();
  }
});

test('a files user costs no process when nsswitch has only files and systemd for groups', async () => {
  const f = fixture('passwd: files systemd\ngroup:          files systemd\n');
  const nss = fakeGetent({});
  try {
    assert.equal((await userByUid(1000, { ...f.options, getent: nss.run })).groups, ['alice', 'kvm', 'staff']);
    assert.equal(nss.calls, []);
  } finally {
    f.done();
  }
});

test('missing passwd and group files mean "ask getent", a directory is an I/O error', async () => {
  const f = fixture();
  try {
    const missing = { passwdFile: `${f.dir}/none`, groupFile: `${f.dir}/none`, nsswitchFile: `${f.dir}/none` };
    assert.is((await userDbError(() => userByUid(0, { ...missing, getent: null }))).code, 'USERDB_NO_SUCH_UID');
    const err = await userDbError(() => userByUid(0, { ...missing, passwdFile: f.dir, getent: null }));
    assert.is(err.code, 'USERDB_IO');
    assert.ok(err.message.startsWith(`${f.dir}: cannot read it (`), err.message);
  } finally {
    f.done();
  }
});

test('a change to the group or passwd file is seen at the next lookup, even one that keeps the size', async () => {
  const f = fixture();
  try {
    const options = { ...f.options, getent: null };
    assert.ok((await userByName('bob', options)).groups.includes('kvm'));
    // bob leaves kvm; "bxb" keeps the file's size, so only the change of times can tell.
    writeFileSync(f.options.groupFile, GROUP.replace('kvm:x:106:alice,bob', 'kvm:x:106:alice,bxb'));
    assert.not.ok((await userByName('bob', options)).groups.includes('kvm'));
    // A file replaced by another (a new inode), as editors and useradd do.
    writeFileSync(`${f.options.passwdFile}.new`, PASSWD.replace('bob:x:1001:1001', 'bob:x:1001:1000'));
    renameSync(`${f.options.passwdFile}.new`, f.options.passwdFile);
    assert.is((await userByName('bob', options)).gid, 1000);
    rmSync(f.options.passwdFile);
    await userDbError(() => userByName('bob', options));
  } finally {
    f.done();
  }
});

test.run();
