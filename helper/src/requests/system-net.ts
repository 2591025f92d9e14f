/** NetOps backed by the real network layer (helper/src/net): ip, ovs-vsctl and /sys. */
import { createTapsMany, deleteTaps, ifindexOf, ovsCleanup, tapInfo } from '../net/index.js';
import type { NetOps } from './net-ops.js';

export const systemNet: NetOps = {
  createTaps: (requests, opts) => createTapsMany(requests, opts),
  async deleteTaps(nics, opts) {
    await deleteTaps(nics, opts);
  },
  async ovsCleanup(ports, caller, opts) {
    const result = await ovsCleanup(ports, caller, opts);
    return { removed: [...result.removed], refused: result.refused.map((r) => ({ bridge: r.bridge, tap: r.tap, code: r.code, message: r.message })) };
  },
  ifindex: (name) => ifindexOf(name),
  isTap: (name) => tapInfo(name).isTap,
};
