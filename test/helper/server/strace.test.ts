// Invariant 1, with evidence from the kernel's side: the real helper runs under
// `strace -f -v -e trace=execve`, started with a hostile PATH that puts decoy `ip`, `sh` and
// `ovs-vsctl` first. Rejected requests (policy, name, op, framing) execute nothing at all; a
// make-nics on a Linux bridge and an Open vSwitch bridge, both under mac-lock, executes only
// /usr/sbin/ip, /usr/bin/ovs-vsctl, /usr/sbin/bridge and /usr/bin/ovs-ofctl, by absolute path (no PATH search, no shell), with exactly the environment
// PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { startHelper, STRACE, type HelperProcess } from '../../support/helper-process.js';
import { createNetns, createTestUser, DEFAULT_PATH, removeTestUser, type Netns, type TestUser } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import { Agent, assertError, assertNics, fail, requireRoot } from './support.js';
import { rawFrame } from './wire.js';

const FIXED_ENV = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'LC_ALL=C'];
const ALLOWED = ['/usr/sbin/ip', '/usr/bin/ovs-vsctl', '/usr/sbin/bridge', '/usr/bin/ovs-ofctl'];

let user: TestUser | undefined;
let ns: Netns | undefined;
let ovs: Ovs | undefined;
let helper: HelperProcess | undefined;
let agent: Agent | undefined;
let work: string | undefined;
let trace: string | undefined;

test.before(async () => {
  requireRoot();
  if (!existsSync(STRACE)) throw new Error(`${STRACE} is missing: apt-get install strace (listed in .ci/setup)`);
  work = mkdtempSync('/tmp/xkvms-');
  chmodSync(work, 0o755);
  // decoys: if the helper ever searched PATH or ran a shell, these would leave a mark
  const decoys = join(work, 'decoys');
  mkdirSync(decoys, { mode: 0o755 });
  for (const name of ['ip', 'sh', 'bash', 'ovs-vsctl', 'bridge', 'ovs-ofctl', 'getent', 'env']) {
    writeFileSync(join(decoys, name), `#!/bin/sh\necho "$0 $*" >> ${join(work, 'decoy-ran')}\nexit 1\n`, { mode: 0o755 });
  }
  trace = join(work, 'strace.out');
  user = createTestUser('a');
  ns = createNetns({ bridges: ['br0', 'br1'] });
  ovs = startOvs(ns, { bridges: ['ovsbr0'] });
  const db = ovs.db;
  helper = await startHelper(ns, {
    policy: `ovsdb ${db}\nallow br0 ${user.name}\nallow ovsbr0 ${user.name}\nmac-lock br0 ${user.name}\nmac-lock ovsbr0 ${user.name}\n`,
    env: { PATH: `${decoys}:${DEFAULT_PATH}`, SHELL: join(decoys, 'sh') },
    straceOutput: trace,
  });
  agent = Agent.start(ns, user);
});

test.after(async () => {
  await agent?.stop();
  await helper?.stop();
  ovs?.stop();
  ns?.destroy();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
  if (user !== undefined) removeTestUser(user);
});

interface Exec {
  readonly pid: number;
  readonly time: number;
  readonly file: string;
  readonly argv: string[];
  readonly envp: string[];
  readonly result: string;
  readonly line: string;
}

/** Parse strace's `-v -ttt` execve lines (a JSON-compatible enough quoting for these strings). */
function parseTrace(text: string): Exec[] {
  const out: Exec[] = [];
  const unfinished = new Map<number, string>();
  for (const raw of text.split('\n')) {
    let line = raw;
    const head = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(line);
    if (head === null) continue;
    const pid = Number(head[1]);
    let rest = head[3]!;
    if (rest.endsWith('<unfinished ...>')) {
      unfinished.set(pid, rest.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. execve resumed>(.*)$/.exec(rest);
    if (resumed !== null) {
      rest = (unfinished.get(pid) ?? '') + resumed[1]!;
      unfinished.delete(pid);
      line = `${pid} ${head[2]!} ${rest}`;
    }
    const m = /^execve\((".*?"), (\[.*?\]), (\[.*\]|0x[0-9a-f]+ \/\* \d+ vars \*\/)\)\s*=\s*(.*)$/.exec(rest);
    if (m === null) continue;
    const strings = (list: string): string[] => (list.startsWith('[') ? JSON.parse(list.replace(/\\x([0-9a-f]{2})/g, '\\u00$1')) as string[] : [list]);
    out.push({ pid, time: Number(head[2]), file: JSON.parse(m[1]!) as string, argv: strings(m[2]!), envp: strings(m[3]!), result: m[4]!.trim(), line });
  }
  return out;
}

/**
 * Stretches of the trace, each between two markers: an ovs-cleanup of a port that does not exist
 * runs one ovs-vsctl naming that port (and is refused with NO_SUCH_PORT), so the trace shows
 * exactly where the stretch began and ended, with no clock involved.
 */
const stretches: Array<{ what: string; from: string; to: string }> = [];

async function marker(a: Agent, conn: string, port: string, id: number): Promise<void> {
  assertError(await a.ask(conn, { v: 1, id, op: 'ovs-cleanup', ports: [{ bridge: 'ovsbr0', tap: port }] }), 'NO_SUCH_PORT', id, `marker ${port}`);
}

test('rejected requests (denied bridge, bad name, unknown op, broken frame) execute nothing', async () => {
  const a = agent ?? fail('no agent');
  const h = helper ?? fail('no helper');
  await a.open('mark', h.socket);
  await a.open('bad', h.socket);
  await marker(a, 'mark', 'xkvmmark0', 100);
  assertError(await a.ask('bad', { v: 1, id: 1, op: 'make-nics', bridges: ['br1'] }), 'DENIED', 1, 'denied');
  assertError(await a.ask('bad', { v: 1, id: 2, op: 'make-nics', bridges: ['br0;sh'] }), 'BAD_NAME', 2, 'bad name');
  assertError(await a.ask('bad', { v: 1, id: 3, op: 'make-nics', bridges: ['$(id)'] }), 'BAD_NAME', 3, 'bad name');
  assertError(await a.ask('bad', { v: 1, id: 4, op: 'run', argv: ['/bin/sh'] }), 'UNKNOWN_OP', 4, 'unknown op');
  await a.send('bad', rawFrame(Buffer.from([0xc1])));
  assertError(await a.next('bad'), 'BAD_FRAME', 0, 'broken frame');
  await a.close('bad');
  await marker(a, 'mark', 'xkvmmark1', 101);
  await a.close('mark');
  stretches.push({ what: 'rejected requests', from: 'xkvmmark0', to: 'xkvmmark1' });
});

test('make-nics on a Linux and an OVS bridge under mac-lock, and the session\'s end, execute only ip, ovs-vsctl, bridge and ovs-ofctl by absolute path with a fixed environment', async () => {
  const a = agent ?? fail('no agent');
  const h = helper ?? fail('no helper');
  await a.open('good', h.socket);
  const request = { v: 1, id: 7, op: 'make-nics', nics: [{ bridge: 'br0', mac: '52:54:00:4c:00:01' }, { bridge: 'ovsbr0', mac: '52:54:00:4c:00:02' }] };
  const nics = assertNics(await a.ask('good', request), 7, ['br0', 'ovsbr0'], h.ns, 'make-nics');
  assert.equal(nics.map((n) => n.type), ['brctl', 'ovs']);
  const mark = h.auditMark();
  await a.close('good');
  await h.waitForAudit(mark, 1);
  await h.stop(); // strace writes its last lines when the helper ends
  const text = readFileSync(trace ?? fail('no trace'), 'utf8');
  const execs = parseTrace(text);
  assert.ok(execs.length >= 3, `too few execve lines in the trace:\n${text.slice(0, 3000)}`);
  // the first one is strace starting the helper itself (node)
  const [self, ...children] = execs;
  assert.is(self!.file, process.execPath, `the first execve: ${self!.line}`);
  assert.ok(children.length >= 3, `expected ip and ovs-vsctl runs:\n${children.map((e) => e.line).join('\n')}`);
  for (const e of children) {
    assert.ok(ALLOWED.includes(e.file), `executed ${e.file} (only ${ALLOWED.join(', ')} are allowed): ${e.line}`);
    assert.is(e.result, '0', `a failed execve means a search or a missing tool: ${e.line}`);
    assert.ok(!/(^|\/)(ba|da|z)?sh$/.test(e.argv[0] ?? ''), `a shell: ${e.line}`);
    assert.equal(e.envp, FIXED_ENV, `the environment of ${e.file}: ${e.line}`);
  }
  assert.ok(children.some((e) => e.file === '/usr/sbin/ip'), 'ip never ran');
  assert.ok(children.some((e) => e.file === '/usr/bin/ovs-vsctl'), 'ovs-vsctl never ran');
  assert.ok(children.some((e) => e.file === '/usr/sbin/bridge'), 'bridge never ran');
  assert.ok(children.some((e) => e.file === '/usr/bin/ovs-ofctl'), 'ovs-ofctl never ran');
  for (const w of stretches) {
    const at = (port: string): number => {
      const i = execs.findIndex((e) => e.argv.includes(port));
      assert.ok(i >= 0, `the marker ${port} is not in the trace`);
      return i;
    };
    const during = execs.slice(at(w.from) + 1, at(w.to));
    assert.equal(during.map((e) => e.line), [], `${w.what} executed something`);
  }
  assert.not.ok(existsSync(join(work ?? fail('no dir'), 'decoy-ran')), `a decoy ran: ${existsSync(join(work!, 'decoy-ran')) ? readFileSync(join(work!, 'decoy-ran'), 'utf8') : ''}`);
});

test.run();
