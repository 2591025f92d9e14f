import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { groupNames, parseGroup, parsePasswd } from '../../../helper/src/userdb/files.js';
import { parseInitgroups } from '../../../helper/src/userdb/getent.js';
import { GROUP, PASSWD } from './support.js';

test('passwd parsing skips comments, blank, malformed and NIS compat lines', () => {
  assert.equal(parsePasswd(PASSWD).map((e) => e.name), ['root', 'alice', 'bob', 'orphan', 'alice']);
  assert.equal(parsePasswd(PASSWD)[1], { name: 'alice', uid: 1000, gid: 1000 });
});

test('group parsing keeps members, trimmed, and skips malformed lines', () => {
  const groups = parseGroup(GROUP);
  assert.equal(groups.find((g) => g.name === 'staff'), { name: 'staff', gid: 50, members: ['alice', 'orphan'] });
  assert.equal(groups.find((g) => g.name === 'root'), { name: 'root', gid: 0, members: [] });
  assert.not.ok(groups.some((g) => g.name === 'broken'));
});

test('group names are the primary group first, then member groups, without repeats', () => {
  const groups = parseGroup(GROUP + 'kvm2:x:107:alice,alice\n');
  assert.equal(groupNames({ name: 'alice', uid: 1000, gid: 1000 }, groups), ['alice', 'kvm', 'staff', 'kvm2']);
});

test('initgroups output gives the gids after the name', () => {
  assert.equal(parseInitgroups('alice                 27 106 5000\n'), [27, 106, 5000]);
  assert.equal(parseInitgroups('root                 \n'), []);
  assert.equal(parseInitgroups(''), []);
});

test.run();
