import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { parseStatStartTime, processStartTime } from '../../../helper/src/identity/process-start.js';

/** A /proc/PID/stat line with the given comm and starttime (fields as in proc(5)). */
function statLine(comm: string, starttime: string): string {
  const fields = ['4242', `(${comm})`, 'S', '1', '4242', '4242', '0', '-1', '4194560', '120', '0', '0', '0',
    '3', '1', '0', '0', '20', '0', '1', '0', starttime, '12345678', '900', '18446744073709551615'];
  assert.is(fields[21], starttime); // field 22
  return `${fields.join(' ')}\n`;
}

test('the start time of this process is the same on every call', () => {
  const first = processStartTime(process.pid);
  assert.is(typeof first, 'bigint');
  assert.ok(first !== undefined && first > 0n);
  assert.is(processStartTime(process.pid), first);
});

test('a pid above pid_max has no start time', () => {
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  assert.is(processStartTime(pidMax + 1), undefined);
});

test('a process that has exited and been reaped has no start time', () => {
  const child = spawnSync(process.execPath, ['-e', '0']);
  assert.ok(child.pid > 0);
  assert.is(processStartTime(child.pid), undefined);
});

test('a pid that is not a positive integer is refused', () => {
  for (const pid of [0, -1, 1.5, Number.NaN]) assert.throws(() => processStartTime(pid), RangeError);
});

test('the parse counts fields from the last parenthesis, whatever the comm holds', () => {
  assert.is(parseStatStartTime(statLine('a) b (c', '987654')), 987654n);
  assert.is(parseStatStartTime(statLine('x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 (', '55')), 55n);
  assert.is(parseStatStartTime(statLine('new\nline', '7')), 7n);
  assert.is(parseStatStartTime(statLine('plain', '18446744073709551615')), 18446744073709551615n);
});

test('a stat line of the wrong shape is refused rather than misread', () => {
  assert.throws(() => parseStatStartTime(''), /no "\(comm\)"/);
  assert.throws(() => parseStatStartTime('42 comm S 1'), /no "\(comm\)"/);
  assert.throws(() => parseStatStartTime('42 (short) S 1 2 3'), /field 22/);
  assert.throws(() => parseStatStartTime(statLine('x', '-5')), /field 22/);
});

test('a live process whose name holds parentheses and spaces gets its real start time', async () => {
  const child = spawn(process.execPath, ['-e', 'process.title = "a) b (c"; process.stdout.write("ready"); setInterval(() => {}, 1000);'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await once(child.stdout, 'data');
    const pid = child.pid ?? 0;
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    assert.ok(stat.includes('(a) b (c)'), `comm was not set: ${stat.slice(0, 40)}`);
    // Known comm, so cut it off by its known text rather than by the rule under test.
    const marker = '(a) b (c) ';
    const expected = BigInt(stat.slice(stat.indexOf(marker) + marker.length).split(' ')[19] ?? 'x');
    const own = processStartTime(process.pid) ?? 0n;
    assert.is(processStartTime(pid), expected);
    assert.ok(expected >= own);
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
});

test.run();
