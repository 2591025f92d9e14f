/**
 * A VM's taps: one make-nics request on a connection that stays open while qemu runs
 * (lifetime "session"), so the helper removes them when the connection ends, however it ends.
 */
import type { Lifetime, Nic, Reply } from '../../../shared/src/protocol/messages.js';
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

export async function makeNics(
  bridges: string[],
  lifetime: Lifetime,
  location: HelperLocation = locateHelper(),
): Promise<TapSession> {
  const connection = await openConnection(location);
  try {
    const reply = await connection.request({ v: 1, op: 'make-nics', bridges, lifetime });
    if (!reply.ok) throw replyError(reply, connection);
    if (!('nics' in reply) || reply.nics.length !== bridges.length || reply.nics.some((n, i) => n.bridge !== bridges[i])) {
      throw new ClientError('HELPER', 'the helper answered make-nics with taps for other bridges than asked');
    }
    return { nics: reply.nics, connection, location };
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
