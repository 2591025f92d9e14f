/**
 * A VM's taps: one make-nics request on a connection that stays open while qemu runs. By
 * default the taps come as file descriptors (makeFdNics, fd-request.ts): they die with qemu.
 * Named taps (makeNics: lifetime "session", or "persistent" for tap-control) are removed by the
 * helper when the connection ends, however it ends, or stay until their owner removes them.
 */
import { parseMacLockRefusal } from '../../../shared/src/protocol/mac-lock.js';
import type { Lifetime, Nic, NicRequest, Reply } from '../../../shared/src/protocol/messages.js';
import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import { ClientError } from '../errors.js';
import { openConnection, type HelperConnection, type RequestBody } from './connection.js';
import { closeFds } from '../native/fdpass.js';
import { openFdConnection, type FdConnection } from './fd-request.js';
import { locateHelper, type HelperLocation } from './locate.js';

function replyError(reply: Extract<Reply, { ok: false }>, description: string): ClientError {
  return new ClientError('HELPER', `the helper refused: ${escapeForTerminal(reply.error.message)} [${escapeForTerminal(reply.error.code)}] (via ${description})`);
}

export interface TapSession {
  nics: Nic[];
  connection: HelperConnection;
  location: HelperLocation;
}

/**
 * After the socket helper went away under a running VM: connect once, so socket activation
 * starts a new helper, which adopts this session from its record on disk (and removes the
 * taps when this client ends). Best effort: failures are only reported.
 */
export async function wakeHelper(location: HelperLocation): Promise<boolean> {
  if (location.kind !== 'socket') return false;
  try {
    const connection = await openConnection(location);
    connection.close();
    return true;
  } catch {
    return false;
  }
}

/** What makeNics does beyond asking. */
export interface MakeNicsOptions {
  /**
   * On the helper's mac-lock refusal (shared/src/protocol/mac-lock.ts): a MAC for each of the
   * nics it names, and ask once more. Without it, the refusal is the error.
   */
  chooseMac?: (index: number, bridge: string) => string;
}

function sameNics(asked: readonly NicRequest[], got: readonly Nic[]): string | undefined {
  if (got.length !== asked.length || got.some((n, i) => n.bridge !== asked[i]!.bridge)) return 'taps for other bridges than asked';
  for (const [i, n] of got.entries()) {
    const want = asked[i]!;
    if ((n.queues ?? 1) !== (want.queues ?? 1)) return `a tap with ${n.queues ?? 1} queues on ${n.bridge}, asked for ${want.queues ?? 1}`;
    if (n.mac !== undefined && n.mac !== want.mac) return `a tap on ${n.bridge} locked to another MAC than asked`;
  }
  return undefined;
}

type Ask = (body: RequestBody) => Promise<Reply>;

/**
 * make-nics for `nics` through `ask`, with the one retry after a mac-lock refusal, and the reply
 * checked against what was asked. Sent as `bridges` when no nic has more than its bridge, as
 * before per-NIC options.
 */
async function negotiate(
  nics: readonly NicRequest[],
  how: { lifetime: Lifetime } | { handoff: 'fd' },
  ask: Ask,
  description: string,
  options: MakeNicsOptions,
): Promise<{ nics: Nic[]; asked: NicRequest[] }> {
  let asked = nics.map((n) => ({ ...n }));
  const send = (): Promise<Reply> => {
    const plain = asked.every((n) => Object.keys(n).length === 1);
    return ask(plain
      ? { v: 1, op: 'make-nics', bridges: asked.map((n) => n.bridge), ...how }
      : { v: 1, op: 'make-nics', nics: asked, ...how });
  };
  let reply = await send();
  const refusal = !reply.ok && reply.error.code === 'BAD_REQUEST' && options.chooseMac !== undefined
    ? parseMacLockRefusal(reply.error.message, asked) : undefined;
  if (refusal !== undefined) {
    const choose = options.chooseMac!;
    asked = asked.map((n, index) => {
      const m = refusal.missing.find((x) => x.index === index);
      return m === undefined ? n : { ...n, mac: choose(index, m.bridge) };
    });
    reply = await send();
  }
  if (!reply.ok) throw replyError(reply, description);
  if (!('nics' in reply)) throw new ClientError('HELPER', 'the helper answered make-nics without taps');
  const wrong = sameNics(asked, reply.nics);
  if (wrong !== undefined) throw new ClientError('HELPER', `the helper answered make-nics with ${wrong}`);
  return { nics: reply.nics, asked };
}

/**
 * Named taps for `nics` (their bridges, queues and MACs), on one connection. `asked` is the
 * request as it was finally made (with the MACs chooseMac gave, if the helper asked for them).
 */
export async function makeNics(
  nics: readonly NicRequest[],
  lifetime: Lifetime,
  location: HelperLocation = locateHelper(),
  options: MakeNicsOptions = {},
): Promise<TapSession & { asked: NicRequest[] }> {
  const connection = await openConnection(location);
  try {
    const made = await negotiate(nics, { lifetime }, (body) => connection.request(body), connection.description, options);
    return { ...made, connection, location };
  } catch (error) {
    connection.close();
    throw error;
  }
}

/** Taps handed over as file descriptors: `fds[i]` are nic i's queue fds, in queue order (O_CLOEXEC). */
export interface FdTaps {
  nics: Nic[];
  fds: number[][];
  asked: NicRequest[];
  /** Open while the VM runs (closing it does not affect the taps). */
  connection: FdConnection;
}

/**
 * Taps for `nics` by fd handoff (issue 11): one fd per queue with the reply, checked against it.
 * On any failure every fd received is closed (the kernel then removes those taps).
 */
export async function makeFdNics(
  nics: readonly NicRequest[],
  location: HelperLocation = locateHelper(),
  options: MakeNicsOptions = {},
): Promise<FdTaps> {
  const connection = await openFdConnection(location);
  const expect = nics.reduce((sum, n) => sum + (n.queues ?? 1), 0);
  let fds: number[] = [];
  try {
    const ask: Ask = async (body) => {
      const got = await connection.request(body, expect);
      fds = got.fds;
      return got.reply;
    };
    const made = await negotiate(nics, { handoff: 'fd' }, ask, connection.description, options);
    let k = 0;
    const split = made.nics.map((n) => fds.slice(k, (k += n.queues ?? 1)));
    return { ...made, fds: split, connection };
  } catch (error) {
    closeFds(fds);
    connection.close();
    throw error;
  }
}

export async function ovsCleanup(ports: Array<{ bridge: string; tap: string }>, location: HelperLocation = locateHelper()): Promise<Array<{ bridge: string; tap: string }>> {
  const connection = await openConnection(location);
  try {
    const reply = await connection.request({ v: 1, op: 'ovs-cleanup', ports });
    if (!reply.ok) throw replyError(reply, connection.description);
    if (!('removed' in reply)) throw new ClientError('HELPER', 'the helper answered ovs-cleanup without a "removed" list');
    return reply.removed;
  } finally {
    connection.close();
  }
}
