// The mac-lock refusal (shared/src/protocol/mac-lock.ts): what the helper writes, for a person,
// and what the client reads back from it. The parser takes exactly the formatter's output for
// the request that was refused; every near miss below is refused (undefined), so the client
// shows it as it is instead of choosing MACs for nics the helper did not name.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { formatMacLockRefusal, parseMacLockRefusal, type MacLockRefusal } from '../../../shared/src/protocol/mac-lock.js';

const CONF = '/etc/xkvm/helper.conf';
const request = [{ bridge: 'br0' }, { bridge: 'br1', mac: '52:54:00:00:00:01' }, { bridge: 'br1' }, { bridge: 'br0' }, { bridge: 'virbr0' }];
const one: MacLockRefusal = { user: 'alice', missing: [{ index: 0, bridge: 'br0', rule: `${CONF}:3` }] };
const three: MacLockRefusal = {
  user: 'alice',
  missing: [
    { index: 0, bridge: 'br0', rule: `${CONF}:3` },
    { index: 2, bridge: 'br1', rule: `${CONF}:7` },
    { index: 3, bridge: 'br0', rule: `${CONF}:3` },
  ],
};

test('the refusal names mac-lock, each bridge once with its policy line, and every nic without a mac, in words', () => {
  assert.is(formatMacLockRefusal(one), `taps of alice are under mac-lock on br0 (${CONF}:3), so nics[0] must carry the guest's "mac"`);
  assert.is(formatMacLockRefusal(three),
    `taps of alice are under mac-lock on br0 (${CONF}:3), br1 (${CONF}:7), so nics[0], nics[2], nics[3] must carry the guest's "mac"`);
});

test('what the formatter writes for a request, the parser reads back whole', () => {
  assert.equal(parseMacLockRefusal(formatMacLockRefusal(one), request), one);
  assert.equal(parseMacLockRefusal(formatMacLockRefusal(three), request), three);
  const odd: MacLockRefusal = { user: 'a.b-c_d', missing: [{ index: 4, bridge: 'virbr0', rule: '/etc/xkvm/conf.d/lab, 2 (old).conf:12' }] };
  // A rule path with parentheses cannot be told apart from the frame: not read, shown as it is.
  assert.is(parseMacLockRefusal(formatMacLockRefusal(odd), request), undefined);
  const commas: MacLockRefusal = { user: 'bob', missing: [{ index: 4, bridge: 'virbr0', rule: '/etc/xkvm/conf.d/lab, 2.conf:12' }] };
  assert.equal(parseMacLockRefusal(formatMacLockRefusal(commas), request), commas);
});

test('anything but the exact refusal for this request is not read as one', () => {
  const good = formatMacLockRefusal(three);
  const hostile: Array<[string, string]> = [
    ['empty', ''],
    ['another refusal', 'nics[0].mac is not a unicast MAC: it is all zero'],
    ['the old single-nic wording', `taps of alice on br0 are under mac-lock (${CONF}:3), so nics[0] must carry the guest's "mac"`],
    ['text before', `error: ${good}`],
    ['text after', `${good}.`],
    ['a trailing newline', `${good}\n`],
    ['a line break inside', good.replace(', so', ',\nso')],
    ['a nic that has a mac', `taps of alice are under mac-lock on br1 (${CONF}:7), so nics[1] must carry the guest's "mac"`],
    ['a nic beyond the request', `taps of alice are under mac-lock on br0 (${CONF}:3), so nics[5] must carry the guest's "mac"`],
    ['a nic on another bridge than named', `taps of alice are under mac-lock on br1 (${CONF}:7), so nics[0] must carry the guest's "mac"`],
    ['a bridge no nic is on', `taps of alice are under mac-lock on br0 (${CONF}:3), br1 (${CONF}:7), so nics[0] must carry the guest's "mac"`],
    ['a bridge named twice', `taps of alice are under mac-lock on br0 (${CONF}:3), br0 (${CONF}:3), so nics[0], nics[3] must carry the guest's "mac"`],
    ['bridges out of order', `taps of alice are under mac-lock on br1 (${CONF}:7), br0 (${CONF}:3), so nics[0], nics[2], nics[3] must carry the guest's "mac"`],
    ['indices out of order', `taps of alice are under mac-lock on br0 (${CONF}:3), so nics[3], nics[0] must carry the guest's "mac"`],
    ['an index twice', `taps of alice are under mac-lock on br0 (${CONF}:3), so nics[0], nics[0] must carry the guest's "mac"`],
    ['a leading zero', `taps of alice are under mac-lock on br0 (${CONF}:3), so nics[00] must carry the guest's "mac"`],
    ['a negative index', `taps of alice are under mac-lock on br0 (${CONF}:3), so nics[-1] must carry the guest's "mac"`],
    ['a huge index', `taps of alice are under mac-lock on br0 (${CONF}:3), so nics[99999999999999999999] must carry the guest's "mac"`],
    ['no nics', `taps of alice are under mac-lock on br0 (${CONF}:3), so  must carry the guest's "mac"`],
    ['no rule', 'taps of alice are under mac-lock on br0, so nics[0] must carry the guest\'s "mac"'],
    ['a rule without a line', `taps of alice are under mac-lock on br0 (${CONF}), so nics[0] must carry the guest's "mac"`],
    ['line 0', `taps of alice are under mac-lock on br0 (${CONF}:0), so nics[0] must carry the guest's "mac"`],
    ['a bad bridge name', `taps of alice are under mac-lock on br/0 (${CONF}:3), so nics[0] must carry the guest's "mac"`],
    ['a user with a space', `taps of al ice are under mac-lock on br0 (${CONF}:3), so nics[0] must carry the guest's "mac"`],
    ['double spaces', good.replace(', nics[2]', ',  nics[2]')],
    ['a different separator', good.replace(', nics[2]', ' and nics[2]')],
    ['other case', good.replace('mac-lock', 'MAC-LOCK')],
    ['control characters', good.replace('alice', 'ali\u001bce')],
  ];
  for (const [what, message] of hostile) assert.is(parseMacLockRefusal(message, request), undefined, what);
});

test.run();
