/**
 * A VM's taps: one make-nics request on a connection that stays open while qemu runs
 * (lifetime "session"), so the helper removes them when the connection ends, however it ends.
 */
import { parseMacLockRefusal } from '../../../shared/src/protocol/mac-lock.js';
import type { Lifetime, Nic, NicRequest, Reply } from '../../../shared/src/protocol/messages.js';
import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import { ClientError } from '../errors.js';
import { openConnection, type HelperConnection } from './connection.js';
import { locateHelper, type HelperLocation } from './locate.js';

function replyError(reply: Extract<Reply, { ok: false }>, connection: HelperConnection): ClientError {
  return new ClientError('HELPER', `the helper refused: ${escapeForTerminal(reply.error.message)} [${escapeForTerminal(reply.error.code)}] (via ${connection.description})`);
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

/**
 * Taps for `nics` (their bridges, queues and MACs), on one connection. Sent as `bridges` when no
 * nic has more than its bridge, as before per-NIC options. `asked` is the request as it was
 * finally made (with the MACs chooseMac gave, if the helper asked for them).
 */
export async function makeNics(
  nics: readonly NicRequest[],
  lifetime: Lifetime,
  location: HelperLocation = locateHelper(),
  options: MakeNicsOptions = {},
): Promise<TapSession & { asked: NicRequest[] }> {
  const connection = await openConnection(location);
  try {
    let asked = nics.map((n) => ({ ...n }));
    const ask = (): Promise<Reply> => {
      const plain = asked.every((n) => Object.keys(n).length === 1);
      return connection.request(plain
        ? { v: 1, op: 'make-nics', bridges: asked.map((n) => n.bridge), lifetime }
        : { v: 1, op: 'make-nics', nics: asked, lifetime });
    };
    let reply = await ask();
    const refusal = !reply.ok && reply.error.code === 'BAD_REQUEST' && options.chooseMac !== undefined
      ? parseMacLockRefusal(reply.error.message, asked) : undefined;
    if (refusal !== undefined) {
      const choose = options.chooseMac!;
      asked = asked.map((n, index) => {
        const m = refusal.missing.find((x) => x.index === index);
        return m === undefined ? n : { ...n, mac: choose(index, m.bridge) };
      });
      reply = await ask();
    }
    if (!reply.ok) throw replyError(reply, connection);
    if (!('nics' in reply)) throw new ClientError('HELPER', 'the helper answered make-nics without taps');
    const wrong = sameNics(asked, reply.nics);
    if (wrong !== undefined) throw new ClientError('HELPER', `the helper answered make-nics with ${wrong}`);
    return { nics: reply.nics, connection, location, asked };
  } catch (error) {
    connection.close();
    throw error;
  }
}

export async function ovsCleanup(ports: Array<{ bridge: string; tap: string }>, location: HelperLocation = locateHelper()): Promise<Array<{ bridge: string; tap: string }>> {
  const connection = await openConnection(location);
  try {
    const reply = await connection.request({ v: 1, op: 'ovs-cleanup', ports });
    if (!reply.ok) throw replyError(reply, connection);
    if (!('removed' in reply)) throw new ClientError('HELPER', 'the helper answered ovs-cleanup without a "removed" list');
    return reply.removed;
  } finally {
    connection.close();
  }
}
