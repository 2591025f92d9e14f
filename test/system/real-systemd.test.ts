/**
 * The helper under a real systemd, as PID 1, in a container (test/support/systemd-container.ts:
 * a cached Debian 12 tree booted with systemd-nspawn, this checkout bound read-only at /opt/xkvm).
 * Inside, a oneshot unit does exactly the README's admin path: `xkvm-helper install --group
 * kvm`, `systemctl daemon-reload && systemctl enable --now xkvm-helper.socket`, a bridge, a
 * policy, users alice and bob. Then each step below checks one thing and records what it saw;
 * the tests read that back after the container has powered off.
 *
 * Then `xkvm-helper status` and a user's `xkvm doctor`, and uninstall.
 *
 * Steps run in order in one boot (each sees what the ones before left); to add one, add a
 * `Step` to STEPS and a test that reads its records. On a warm cache the whole suite takes
 * seconds (the boot itself well under one); the first run builds the tree (about a minute).
 * `XKVM_SYSTEMD_DUMP=FILE` writes everything the steps recorded, and the container's journal,
 * to FILE.
 */
import { writeFileSync } from 'node:fs';
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { bootWithSteps, CHECKOUT_INSIDE, debianTree, type Boot, type Recorded, type Step } from '../support/systemd-container.js';

const REQUEST_ID = '1c8e1dbef9cc4d35a5048052ee2ba6de';
const HELPER_UNIT = '/etc/systemd/system/xkvm-helper.service';
/** What `xkvm-helper install` writes (and uninstall must remove). */
const INSTALLED = [
  '/etc/systemd/system/xkvm-helper.socket',
  HELPER_UNIT,
  '/usr/local/libexec/xkvm/xkvm-helper',
  '/usr/share/polkit-1/actions/org.xkvm.helper.policy',
  '/etc/polkit-1/rules.d/50-xkvm-helper.rules',
  '/etc/systemd/system/sockets.target.wants/xkvm-helper.socket',
  '/usr/local/libexec/xkvm',
];

const STEPS: Step[] = [
  {
    // The README's admin path, as root, from the checkout. Debian's minbase has no kvm group
    // (hosts with qemu have one): make it, as the host's packages would.
    name: 'install',
    script: String.raw`
      getent group kvm >/dev/null || groupadd --system kvm
      cd ${CHECKOUT_INSIDE}
      record install node dist/helper/src/main.js install --group kvm
      record enable sh -c 'systemctl daemon-reload && systemctl enable --now xkvm-helper.socket'
      ip link add br0 type bridge && ip link set br0 up
      printf '%s\n' 'allow br0 alice' 'max-taps 8' 'audit-log /var/log/xkvm/audit.log' > /etc/xkvm/helper.conf
      useradd -m alice && useradd -m bob
      record socket systemctl is-active xkvm-helper.socket
      record service systemctl is-active xkvm-helper.service
      record listening test -S /run/xkvm/helper.sock
      record security systemd-analyze security --no-pager xkvm-helper.service
    `,
  },
  {
    // Socket activation: alice's first request starts the service (default socket, no
    // XKVM_HELPER_SOCKET).
    name: 'alice',
    script: String.raw`
      record make as_user alice xkvm tap-control make-nics br0
      tap=$(sed -n 's/:brctl$//p' "$R/$STEP.make.out")
      echo "$tap" > /run/xkvm-test/tap
      record service systemctl is-active xkvm-helper.service
      record owner cat "/sys/class/net/$tap/owner"
      record master sh -c "basename \$(readlink /sys/class/net/$tap/master)"
      record uid id -u alice
    `,
  },
  {
    name: 'bob',
    script: String.raw`
      record make as_user bob xkvm tap-control make-nics br0
      record links ls /sys/class/net
    `,
  },
  {
    // The journal: the request's record, natively with fields, and no stderr copy of it.
    name: 'journal',
    script: String.raw`
      tap=$(cat /run/xkvm-test/tap)
      wait_until 30 sh -c "journalctl -q XKVM_TAP=$tap | grep -q ."
      record alice journalctl XKVM_USER=alice -o json --output-fields=MESSAGE,MESSAGE_ID,XKVM_EVENT,XKVM_UID,XKVM_USER,XKVM_RESULT,XKVM_BRIDGE,XKVM_TAP,XKVM_RECORD,_SYSTEMD_UNIT,_UID
      wait_until 30 sh -c "journalctl -q XKVM_USER=bob | grep -q ."
      record bob journalctl XKVM_USER=bob -o json --output-fields=XKVM_EVENT,XKVM_RESULT,XKVM_CODE,XKVM_BRIDGE
      record unit journalctl -u xkvm-helper -o cat
    `,
  },
  {
    name: 'audit',
    script: String.raw`
      record json xkvm-helper audit --user alice --json
      record readable xkvm-helper audit --user alice
      record bridge xkvm-helper audit --bridge br0 --json
      record since xkvm-helper audit --since 1h --json
    `,
  },
  {
    // The idle exit, with --idle-timeout 3 in a drop-in as the README says; then the socket
    // starts the service again.
    name: 'idle',
    script: String.raw`
      mkdir -p /etc/systemd/system/xkvm-helper.service.d
      { echo '[Service]'; echo 'ExecStart='; echo "$(grep '^ExecStart=' ${HELPER_UNIT}) --idle-timeout 3"; } \
        > /etc/systemd/system/xkvm-helper.service.d/idle.conf
      systemctl daemon-reload
      systemctl stop xkvm-helper.service
      record first as_user alice xkvm tap-control make-nics br0
      record first-id systemctl show -P InvocationID xkvm-helper.service
      record exec systemctl show -P ExecStart xkvm-helper.service
      record went-idle wait_until 30 sh -c '! systemctl is-active --quiet xkvm-helper.service'
      record service systemctl is-active xkvm-helper.service
      record result systemctl show -P Result xkvm-helper.service
      record socket systemctl is-active xkvm-helper.socket
      record listening test -S /run/xkvm/helper.sock
      record second as_user alice xkvm tap-control make-nics br0
      record second-id systemctl show -P InvocationID xkvm-helper.service
    `,
  },
  {
    // A helper run by pkexec (no socket: the socket unit stopped) sends its records to the
    // journal too. install --group kvm lets kvm's members run it without a password.
    name: 'pkexec',
    script: String.raw`
      usermod -aG kvm alice
      systemctl stop xkvm-helper.socket xkvm-helper.service
      record socket-gone sh -c '! test -e /run/xkvm/helper.sock'
      record make as_user alice xkvm tap-control make-nics br0
      tap=$(sed -n 's/:brctl$//p' "$R/$STEP.make.out")
      wait_until 30 sh -c "journalctl -q XKVM_TAP=$tap | grep -q ."
      record journal journalctl XKVM_TAP=$tap -o json --output-fields=MESSAGE,MESSAGE_ID,XKVM_EVENT,XKVM_UID,XKVM_USER,XKVM_RESULT,XKVM_BRIDGE,XKVM_TAP,XKVM_RECORD,SYSLOG_IDENTIFIER,_UID
      systemctl start xkvm-helper.socket
    `,
  },
  {
    // The live inventory (root) and a user's doctor, with the socket back.
    name: 'status',
    script: String.raw`
      record table xkvm-helper status
      record json xkvm-helper status --json
      record bob xkvm-helper status --json --user bob
      record before sh -c 'grep -c "\"event\":\"request\"" /var/log/xkvm/audit.log'
      record alice as_user alice xkvm doctor --netdev br0
      record refused as_user bob xkvm doctor --netdev br0
      record after sh -c 'grep -c "\"event\":\"request\"" /var/log/xkvm/audit.log'
    `,
  },
  {
    // Uninstall, then the next step it prints.
    name: 'uninstall',
    script: String.raw`
      record uninstall xkvm-helper uninstall
      record next sh -c 'systemctl stop xkvm-helper.socket xkvm-helper.service && systemctl daemon-reload'
      record left sh -c 'for f in ${INSTALLED.join(' ')}; do [ -e "$f" ] && echo "$f"; done; true'
      record socket systemctl is-active xkvm-helper.socket
      record listening test -e /run/xkvm/helper.sock
    `,
  },
];

let boot: Boot;

test.before(async () => {
  boot = await bootWithSteps(debianTree(), STEPS, 150_000);
  const dump = process.env['XKVM_SYSTEMD_DUMP'];
  if (dump !== undefined) writeFileSync(dump, `${boot.dump}\n==> the container's journal <==\n${boot.journal}`);
  if (!boot.finished) {
    const last = (text: string): string => text.split('\n').slice(-60).join('\n');
    throw new Error(`the container's steps did not finish (${boot.exit}); systemd-nspawn said:\n${last(boot.console)}\nthe steps recorded:\n${last(boot.dump)}`);
  }
});

/** The record, which must have succeeded. */
function ok(step: string, key: string): Recorded {
  const r = boot.recorded(step, key);
  assert.is(r.status, 0, `${step} ${key} failed (status ${r.status}): ${r.err}${r.out}`);
  return r;
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A journal field as `journalctl -o json` gives it: a string, or an array when repeated. */
function values(entry: Record<string, unknown>, key: string): string[] {
  const v = entry[key];
  return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
}

function aliceTap(): string {
  const tap = ok('alice', 'make').out.trim().replace(/:brctl$/, '');
  assert.match(tap, /^xkvm[a-z0-9]+$/);
  return tap;
}

test('the README admin path installs the helper and systemd listens on the socket, the service not started yet', () => {
  assert.match(ok('install', 'install').out, /xkvm-helper\.socket/);
  ok('install', 'enable');
  assert.is(ok('install', 'socket').out.trim(), 'active');
  assert.is(boot.recorded('install', 'service').out.trim(), 'inactive');
  ok('install', 'listening');
});

test('systemd-analyze security rates the installed service 2.0 or better, as the README says', () => {
  const security = boot.recorded('install', 'security');
  const level = /Overall exposure level for xkvm-helper\.service: (\d+\.\d+)/.exec(security.out)?.[1];
  assert.ok(level !== undefined, `no overall exposure level in:\n${security.out}${security.err}`);
  assert.ok(Number(level) <= 2.0, `exposure ${level}, the README promises 2.0 or better`);
});

test('the first request starts the service: alice gets a tap of hers on br0 through the default socket', () => {
  const make = ok('alice', 'make');
  assert.match(make.out, /^xkvm[a-z0-9]+:brctl\n$/);
  assert.is(ok('alice', 'service').out.trim(), 'active');
  assert.is(ok('alice', 'owner').out.trim(), ok('alice', 'uid').out.trim());
  assert.is(ok('alice', 'master').out.trim(), 'br0');
});

test('bob, whom the policy does not allow, is refused and gets no tap', () => {
  const make = boot.recorded('bob', 'make');
  assert.is.not(make.status, 0);
  assert.is(make.out, '');
  assert.match(make.err, /DENIED|may not/);
  assert.match(make.err, /bob/);
  const taps = ok('bob', 'links').out.split('\n').filter((l) => l.startsWith('xkvm'));
  assert.equal(taps, [aliceTap()]);
});

test('the journal has the request natively, with fields to select by and a readable MESSAGE', () => {
  const tap = aliceTap();
  const entries = jsonLines(ok('journal', 'alice').out);
  const request = entries.find((e) => values(e, 'XKVM_EVENT').includes('request') && values(e, 'XKVM_TAP').includes(tap));
  assert.ok(request, `no request record naming ${tap} in journalctl XKVM_USER=alice:\n${ok('journal', 'alice').out}`);
  assert.equal(values(request, 'MESSAGE_ID'), [REQUEST_ID]);
  assert.equal(values(request, 'XKVM_UID'), [ok('alice', 'uid').out.trim()]);
  assert.equal(values(request, 'XKVM_USER'), ['alice']);
  assert.equal(values(request, 'XKVM_RESULT'), ['ok']);
  assert.equal(values(request, 'XKVM_BRIDGE'), ['br0']);
  assert.equal(values(request, '_SYSTEMD_UNIT'), ['xkvm-helper.service']);
  assert.equal(values(request, '_UID'), ['0']);
  const message = values(request, 'MESSAGE')[0] ?? '';
  assert.match(message, /alice/);
  assert.match(message, new RegExp(tap));
  assert.not.match(message, /^\{/, 'MESSAGE is the readable line, not JSON');
  const record = JSON.parse(values(request, 'XKVM_RECORD')[0] ?? '{}') as Record<string, unknown>;
  assert.is(record['event'], 'request');
  const refusal = jsonLines(ok('journal', 'bob').out).find((e) => values(e, 'XKVM_EVENT').includes('request'));
  assert.ok(refusal, 'no request record for bob');
  assert.equal(values(refusal, 'XKVM_RESULT'), ['error']);
  assert.equal(values(refusal, 'XKVM_CODE'), ['DENIED']);
});

test('the audit records are not duplicated as stderr text in the journal', () => {
  const unit = ok('journal', 'unit').out;
  assert.match(unit, new RegExp(aliceTap()), 'the native records are in journalctl -u xkvm-helper');
  assert.not.match(unit, /xkvm-helper: audit \{/);
});

test('xkvm-helper audit reads back the request from the audit log: --user, --json, readable, --bridge, --since', () => {
  const tap = aliceTap();
  const mine = jsonLines(ok('audit', 'json').out);
  const request = mine.find((r) => r['event'] === 'request' && JSON.stringify(r).includes(tap));
  assert.ok(request, `no request naming ${tap} in xkvm-helper audit --user alice --json`);
  assert.ok(mine.every((r) => JSON.stringify(r['caller'] ?? {}).includes('"alice"') || r['user'] === 'alice'), 'only alice\'s records');
  const readable = ok('audit', 'readable').out;
  assert.match(readable, new RegExp(`alice.*${tap}`));
  const onBridge = jsonLines(ok('audit', 'bridge').out).filter((r) => r['event'] === 'request');
  assert.ok(onBridge.some((r) => JSON.stringify(r).includes(tap)), 'alice\'s request on br0');
  assert.ok(onBridge.some((r) => JSON.stringify(r).includes('"bob"')), 'bob\'s refusal on br0');
  const recent = jsonLines(ok('audit', 'since').out);
  assert.ok(recent.some((r) => JSON.stringify(r).includes(tap)), 'the request is within --since 1h');
});

test('idle, the service exits and the socket stays listening; the next request starts it again', () => {
  assert.match(ok('idle', 'exec').out, /--idle-timeout 3/);
  assert.match(ok('idle', 'first').out, /^xkvm[a-z0-9]+:brctl\n$/);
  ok('idle', 'went-idle');
  assert.is(boot.recorded('idle', 'service').out.trim(), 'inactive');
  assert.is(ok('idle', 'result').out.trim(), 'success');
  assert.is(ok('idle', 'socket').out.trim(), 'active');
  ok('idle', 'listening');
  assert.match(ok('idle', 'second').out, /^xkvm[a-z0-9]+:brctl\n$/);
  const first = ok('idle', 'first-id').out.trim();
  const second = ok('idle', 'second-id').out.trim();
  assert.ok(first !== '' && second !== '' && first !== second, `a new start of the service (${first} then ${second})`);
});

test('a helper run by pkexec sends its records to the system journal, with the same fields', () => {
  ok('pkexec', 'socket-gone');
  const make = ok('pkexec', 'make');
  const tap = make.out.trim().replace(/:brctl$/, '');
  assert.match(tap, /^xkvm[a-z0-9]+$/);
  const entries = jsonLines(ok('pkexec', 'journal').out);
  const request = entries.find((e) => values(e, 'XKVM_EVENT').includes('request'));
  assert.ok(request, `no request record naming ${tap} in the journal:\n${ok('pkexec', 'journal').out}`);
  assert.equal(values(request, 'MESSAGE_ID'), [REQUEST_ID]);
  assert.equal(values(request, 'XKVM_USER'), ['alice']);
  assert.equal(values(request, 'XKVM_UID'), [ok('alice', 'uid').out.trim()]);
  assert.equal(values(request, 'XKVM_BRIDGE'), ['br0']);
  assert.equal(values(request, 'SYSLOG_IDENTIFIER'), ['xkvm-helper']);
  assert.equal(values(request, '_UID'), ['0']);
  const record = JSON.parse(values(request, 'XKVM_RECORD')[0] ?? '{}') as { caller?: { transport?: unknown } };
  assert.is(record.caller?.transport, 'pkexec');
});

test('xkvm-helper status lists alice\'s taps as installed helpers made them, under her, persistent, with their MTU; none of bob\'s', () => {
  const taps = (JSON.parse(ok('status', 'json').out) as { taps: Array<{ tap: string; user: string; uid: number; lifetime: string; bridge: string; mtu: number; since: string }> }).taps;
  assert.ok(taps.length >= 2, ok('status', 'json').out);
  assert.ok(taps.some((t) => t.tap === aliceTap()), `alice's first tap ${aliceTap()} is listed`);
  for (const t of taps) {
    assert.equal([t.user, String(t.uid), t.lifetime, t.bridge, t.mtu], ['alice', ok('alice', 'uid').out.trim(), 'persistent', 'br0', 1500], JSON.stringify(t));
  }
  const table = ok('status', 'table').out.trimEnd().split('\n');
  assert.match(table[0]!, /^TAP\s+BRIDGE\s+TYPE\s+USER/);
  assert.is(table.length, taps.length + 1);
  assert.equal(JSON.parse(ok('status', 'bob').out), { taps: [] });
});

test('xkvm doctor, as alice, finds the socket answering and br0 allowed by its policy line; as bob, refused with the fix; doctor sends no request', () => {
  const alice = boot.recorded('status', 'alice');
  const lines = alice.out.split('\n');
  assert.ok(lines.includes('ok   helper: the socket /run/xkvm/helper.sock answers'), alice.out);
  assert.ok(lines.includes('ok   br0: allowed for you by /etc/xkvm/helper.conf:1: allow br0 alice'), alice.out);
  assert.ok(lines.some((l) => /^ok   taps: \d+ tap\(s\) of yours exist now; max-taps 8/.test(l)), alice.out);
  // The container has no qemu: that, and only that, stops the VM here.
  assert.equal(lines.filter((l) => l.startsWith('FAIL')).map((l) => l.split(':')[0]), ['FAIL qemu'], alice.out);
  assert.is(alice.status, 1);
  const bob = boot.recorded('status', 'refused');
  assert.match(bob.out, "FAIL br0: the helper's policy refuses you: no line allows bob on br0 (default deny); fix: ask an admin for a line 'allow br0 bob'");
  assert.is(bob.status, 1);
  assert.ok(Number(ok('status', 'before').out) > 0, 'the requests before are counted');
  assert.is(ok('status', 'after').out, ok('status', 'before').out, 'no request record: doctor asked the helper for nothing (its connection may start the service: that is all)');
});

test('xkvm-helper uninstall removes what install wrote, and the socket is gone after its next step', () => {
  ok('uninstall', 'uninstall');
  ok('uninstall', 'next');
  assert.is(ok('uninstall', 'left').out, '');
  assert.is.not(boot.recorded('uninstall', 'socket').out.trim(), 'active');
  assert.is.not(boot.recorded('uninstall', 'listening').status, 0);
});

test.run();
