/** Shared by the lifecycle suites: root check, the ordinary test users, a bridged helper. */
import type { Test } from 'uvu';
import { createNetns, createTestUser, removeTestUser, sweepStaleNetns, type Netns, type TestUser } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import { makeScratch, startSocketHelper, stop, type Scratch, type Watched } from '../../support/helper-proc.js';

export function requireRoot(): void {
  if (process.geteuid?.() !== 0) {
    throw new Error('the lifecycle suites must run as root: they start the helper, create namespaces and run clients as ordinary users');
  }
}

/**
 * `count` new ordinary users (at most 3, tags a, b, c), after removing the namespaces and users of
 * dead runs; the suite removes them with removeUsers in its `after`.
 */
export function setUp(count: 1 | 2 | 3): TestUser[] {
  requireRoot();
  sweepStaleNetns();
  return ['a', 'b', 'c'].slice(0, count).map((tag) => createTestUser(tag));
}

export function removeUsers(users: readonly TestUser[] | undefined): void {
  for (const user of users ?? []) removeTestUser(user);
}

/** Two new ordinary users and a namespace with br0. */
export interface TwoUsersOnBr0 {
  ns: Netns;
  alice: TestUser;
  bob: TestUser;
}

/**
 * Two new users and a namespace with br0 for `suite`: made in its `before` and handed to `take`,
 * removed in its `after` (what was made, even when the set-up failed half-way).
 */
export function twoUsersOnBr0(suite: Test, take: (made: TwoUsersOnBr0) => void): void {
  let users: TestUser[] = [];
  let ns: Netns | undefined;
  suite.before(() => {
    users = setUp(2);
    ns = createNetns({ bridges: ['br0'] });
    const [alice, bob] = users as [TestUser, TestUser];
    take({ ns, alice, bob });
  });
  suite.after(() => {
    ns?.destroy();
    removeUsers(users);
  });
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
  const [alice, bob] = setUp(2) as [TestUser, TestUser];
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
      removeUsers([alice, bob]);
    },
  };
}
