/**
 * Deleting devices together. Each `ip link del` of a device waits for an RCU grace period in the
 * kernel (~20 ms here), whatever else it does, so 320 taps deleted one by one took 6.5 s. One
 * unregister for many devices pays that wait once: every device to delete is put in one interface
 * group (`link set dev T group G`), then `link del group G` deletes them all (100 taps: 0.04 s,
 * against 1.88 s one by one).
 *
 * Deletions asked for while one runs wait and go together into the next (and those asked for in
 * the same turn of the event loop start together), so sessions that end together cost a grace
 * period or two, not one each. Every line runs with -force's outcome (a tap that vanished since it
 * was checked fails its own `link set` line, and the others go on); what exists afterwards is
 * read from /sys. The kernel deletes a group all or nothing (it refuses when one of its devices
 * cannot be deleted), so whatever is still there and still in the group is then deleted one by
 * one; a device found under one of the names but not in the group (another device, made since)
 * is never touched.
 *
 * The group is the helper's own: DELETE_GROUP_BASE + the helper's pid, so two helpers on a host
 * (the socket helper, pkexec helpers) never share one, and an admin's groups (small numbers, from
 * /etc/iproute2/group) never meet it. A device is in it only between those two lines; one left
 * there by a helper killed in between is deleted with the next group of a helper with that pid.
 */
import type { NetDeps } from './deps.js';
import { ipBatch, type IpBatch } from './ipbatch.js';
import { deviceExists, groupOf } from './sysfs.js';

/** Interface groups DELETE_GROUP_BASE … DELETE_GROUP_BASE + 2^22 - 1 are the helpers' (pids are below 2^22). */
const DELETE_GROUP_BASE = 0x7800_0000;
const PID_SPAN = 0x40_0000;

/**
 * This process's deletion group.
 * @internal exported for the network-layer tests, which put a device in it that the kernel will
 * not delete, to see that the taps are deleted all the same.
 */
export function deleteGroup(pid: number = process.pid): number {
  return DELETE_GROUP_BASE + (pid % PID_SPAN);
}

interface Waiting {
  readonly names: readonly string[];
  readonly done: (left: string[]) => void;
}

/** Deletions through one ip batch function, gathered into groups. */
class GroupDeleter {
  readonly #batch: IpBatch;
  readonly #group: number;
  #waiting: Waiting[] = [];
  #running = false;

  constructor(batch: IpBatch, group: number) {
    this.#batch = batch;
    this.#group = group;
  }

  /** Deletes the devices named (checked names); resolves with those still present afterwards. */
  delete(names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return Promise.resolve([]);
    return new Promise((done) => {
      this.#waiting.push({ names, done });
      if (this.#running) return;
      this.#running = true;
      setImmediate(() => void this.#drain());
    });
  }

  async #drain(): Promise<void> {
    while (this.#waiting.length > 0) {
      const round = this.#waiting.splice(0);
      try {
        await this.#deleteTogether([...new Set(round.flatMap((w) => w.names))]);
      } catch {
        // what is left is read below, and reported by each caller
      }
      for (const w of round) w.done(w.names.filter((n) => exists(n) !== false));
    }
    this.#running = false;
  }

  async #deleteTogether(names: readonly string[]): Promise<void> {
    const doomed = names.filter((n) => exists(n) === true);
    if (doomed.length === 0) return;
    const group = this.#group;
    await forced(this.#batch, [...doomed.map((n) => `link set dev ${n} group ${group}`), `link del group ${group}`]);
    // The kernel refused the group as a whole (or some line failed): what is still ours, one by one.
    const left = doomed.filter((n) => groupOf(n) === group);
    if (left.length > 0) await forced(this.#batch, left.map((n) => `link del dev ${n}`));
  }
}

/**
 * Whether a device of that name exists; undefined for a name that is not a valid interface name
 * (callers check names first): it never reaches ip, and counts as not deleted.
 */
function exists(name: string): boolean | undefined {
  try {
    return deviceExists(name);
  } catch {
    return undefined;
  }
}

/** Runs lines with -force; a failure is read from /sys afterwards, so it is not reported here. */
async function forced(batch: IpBatch, lines: readonly string[]): Promise<void> {
  try {
    await ipBatch(batch, lines, { force: true });
  } catch {
    // ip timed out or could not run: the caller reads what is left
  }
}

const deleters = new WeakMap<IpBatch, GroupDeleter>();

function deleterFor(batch: IpBatch): GroupDeleter {
  let deleter = deleters.get(batch);
  if (deleter === undefined) {
    deleter = new GroupDeleter(batch, deleteGroup());
    deleters.set(batch, deleter);
  }
  return deleter;
}

/**
 * Deletes the devices named (callers check first that each is one of the helper's taps), together
 * with every other deletion waiting on the same ip. Resolves with the names still present.
 */
export function deleteDevices(names: readonly string[], deps: NetDeps): Promise<string[]> {
  return deleterFor(deps.batch).delete(names);
}
