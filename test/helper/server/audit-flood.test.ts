// Issue 9, attack 3: flooding the audit log. An ordinary user whom the policy allows nothing sends
// 20 000 refused requests as fast as the real helper answers, on 4 connections at a time,
// reconnecting whenever the helper closes one. What must hold: every decision is still on record
// (each refusal is either a record of its own or counted in a summary record), yet the audit-log
// file and the helper's stderr (the journal under systemd) each grow by well under 512 KiB; the
// helper closes a connection after 8 refused requests in a row; and another user is served.
// Measured in bytes after a fixed number of requests, not in time.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createTestUser, removeTestUser, type TestUser } from '../../support/netns.js';
import { stop } from '../../support/helper-proc.js';
import {
  Agent, assertNics, closeBench, fail, makeNicsRequest, openBench, startHostile, type Bench, type Hostile,
} from './support.js';

const REQUESTS = 20_000;
const LANES = 4;
const MAX_REFUSALS = 8;
const BOUND = 512 * 1024;

let bench: Bench | undefined;
let users: [TestUser, TestUser] | undefined;
// the audit-log's folder: root's, 0755, outside the helper's (stop() removes that one)
const logDir = mkdtempSync('/tmp/xkvmlog-');
chmodSync(logDir, 0o755);
const logFile = join(logDir, 'audit.log');
const b = (): Bench => bench ?? fail('no bench');
const u = (): [TestUser, TestUser] => users ?? fail('no users');

test.before(async () => {
  users = [createTestUser('fld'), createTestUser('vic')];
  bench = await openBench({ policy: `allow br0 root ${users[1].name}\naudit-log ${logFile}\n` });
});

test.after(async () => {
  await closeBench(bench);
  for (const user of users ?? []) removeTestUser(user);
  rmSync(logDir, { recursive: true, force: true });
});

const size = (path: string): number => (existsSync(path) ? statSync(path).size : 0);

interface Record_ {
  readonly event: string;
  readonly [key: string]: unknown;
}

test(`${REQUESTS} refused requests from one user grow the audit log and stderr by under 512 KiB each, and every one is on record`, async () => {
  const { helper, ns } = b();
  const [attacker, victim] = u();
  const fileBefore = size(logFile);
  const stderrBefore = Buffer.byteLength(helper.stderr());
  let hostile: Hostile | undefined;
  let agent: Agent | undefined;
  let done;
  try {
    hostile = startHostile(ns, attacker, {
      mode: 'flood', socket: helper.socket, total: REQUESTS, lanes: LANES, request: { v: 1, id: 7, op: 'make-nics', bridges: ['br0'] },
    });
    const events = await hostile.until(`${REQUESTS} replies`, (e) => e.some((x) => x.event === 'done'), 120_000);
    done = events.find((x) => x.event === 'done')!;
    // the other user is served right after the flood
    agent = Agent.start(ns, victim);
    await agent.open('v', helper.socket);
    const id = b().id();
    assertNics(await agent.ask('v', makeNicsRequest(id)), id, ['br0'], ns, 'the other user after the flood');
    await agent.close('v');
  } finally {
    if (hostile !== undefined) await stop(hostile);
    await agent?.stop();
  }
  const replies = done['replies'] as Record<string, number>;
  const denied = replies['DENIED'] ?? 0;
  assert.ok(denied >= REQUESTS, `every request was refused DENIED: ${JSON.stringify(done)}`);
  assert.equal(Object.keys(replies), ['DENIED'], JSON.stringify(done));
  // closed after 8 refusals in a row: at least one connection per 8 replies
  const connections = done['connections'] as number;
  assert.ok(connections >= denied / MAX_REFUSALS, `${connections} connections for ${denied} refusals`);
  assert.is(done['refusedAtConnect'], 0, `${LANES} connections at a time stay under max-connections`);

  // stopping the helper writes the summaries still pending
  await helper.stop();
  const fileGrowth = size(logFile) - fileBefore;
  const stderrGrowth = Buffer.byteLength(helper.stderr()) - stderrBefore;
  if (process.env['XKVM_FLOOD_STATS'] !== undefined) {
    process.stdout.write(`flood: ${denied} refusals on ${connections} connections; audit-log +${fileGrowth} B, stderr +${stderrGrowth} B\n`);
  }
  assert.ok(fileGrowth < BOUND, `the audit-log grew by ${fileGrowth} bytes`);
  assert.ok(stderrGrowth < BOUND, `stderr grew by ${stderrGrowth} bytes`);

  // every refusal is on record: a record of its own, or counted in a summary (file and stderr alike)
  const fromFile = readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record_);
  for (const [where, records] of [['audit-log', fromFile], ['stderr', helper.audit() as readonly Record_[]]] as const) {
    const mine = records.filter((r) => ((r['caller'] as { uid?: number } | undefined)?.uid ?? r['uid']) === attacker.uid);
    const own = mine.filter((r) => r.event === 'request' && r['code'] === 'DENIED').length;
    const summarised = mine.filter((r) => r.event === 'audit-summary' && r['kind'] === 'request make-nics error DENIED')
      .reduce((n, r) => n + (r['count'] as number), 0);
    assert.is(own + summarised, denied, `${where}: ${own} records and ${summarised} in summaries for ${denied} refusals`);
    assert.ok(summarised > 0, `${where}: some refusals were summarised`);
    const summary = mine.find((r) => r.event === 'audit-summary');
    assert.match(String(summary?.['message']), new RegExp(`^\\d+ more refusals? \\(.+\\) from uid ${attacker.uid} in the last [0-9.]+ s$`));
    const closedByRefusals = mine.filter((r) => r.event === 'connection' && r['reason'] === 'refusals').length
      + mine.filter((r) => r.event === 'audit-summary' && String(r['kind']).startsWith('connection closed'))
        .reduce((n, r) => n + (r['count'] as number), 0);
    assert.ok(closedByRefusals >= connections - LANES, `${where}: ${closedByRefusals} closes on record for ${connections} connections`);
  }
});

test.run();
