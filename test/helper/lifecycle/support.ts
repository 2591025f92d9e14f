/** Shared by the lifecycle suites: root check, the ordinary test users, and /dev/net/tun for them. */
import { chmodSync, statSync } from 'node:fs';
import { createNetns, ensureTestUser, sweepStaleNetns, type Netns, type TestUser } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import { makeScratch, startSocketHelper, stop, type Scratch, type Watched } from '../../support/helper-proc.js';

const USER_NAMES = ['xkvmlc-a', 'xkvmlc-b', 'xkvmlc-c'] as const;

export function requireRoot(): void {
  if (process.geteuid?.() !== 0) {
    throw new Error('the lifecycle suites must run as root: they start the helper, create namespaces and run clients as ordinary users');
  }
}

/** The three ordinary users (created if missing), after removing stale namespaces of dead runs. */
export function setUp(): TestUser[] {
  requireRoot();
  sweepStaleNetns();
  return USER_NAMES.map((n) => ensureTestUser(n));
}

/** Ordinary users running qemu (or `ip tuntap del`) need /dev/net/tun 0666, as most distributions ship it. */
export function openTun(): void {
  if ((statSync('/dev/net/tun').mode & 0o666) !== 0o666) chmodSync('/dev/net/tun', 0o666);
}

/** A namespace with br0 and an OVS bridge ovsbr0, and a socket helper letting two users use both. */
export interface BridgedHelper {
  ns: Netns;
  ovs: Ovs;
  scratch: Scratch;
  helper: Watched;
  users: [TestUser, TestUser];
  tearDown(): Promise<void>;
}

export async function bridgedHelper(tag: string): Promise<BridgedHelper> {
  const [alice, bob] = setUp() as [TestUser, TestUser];
  openTun();
  const ns = createNetns({ bridges: ['br0'] });
  const ovs = startOvs(ns, { bridges: ['ovsbr0'] });
  const scratch = makeScratch(tag);
  const config = scratch.policy([`allow br0 ${alice.name} ${bob.name}`, `allow ovsbr0 ${alice.name} ${bob.name}`, `ovsdb ${ovs.db}`]);
  const helper = await startSocketHelper(ns, { config, stateDir: scratch.state, socket: scratch.socket });
  return {
    ns, ovs, scratch, helper, users: [alice, bob],
    async tearDown() {
      await stop(helper);
      ovs.stop();
      ns.destroy();
      scratch.remove();
    },
  };
}
