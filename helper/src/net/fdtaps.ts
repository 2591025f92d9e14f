/**
 * The fds of taps opened for fd handoff (issue 11) while one createTapsMany call makes them: a tap
 * opened by the helper (native/fd-handoff.ts openTap) is not persistent, so closing its fds is
 * what removes it. Every fd opened in a call is either given to the caller with its request's
 * outcome (`take`), or closed when the tap is undone (`close`, from deleteOwnTaps) or when the
 * call ends (`closeAll`): nothing stays open behind the caller's back.
 */
import { closeSync } from 'node:fs';

export class HeldFds {
  readonly #held = new Map<string, readonly number[]>();

  hold(tap: string, fds: readonly number[]): void {
    this.#held.set(tap, fds);
  }

  /** Whether `tap` is one of this call's fd taps, still held. */
  has(tap: string): boolean {
    return this.#held.has(tap);
  }

  /** The tap's fds, now the caller's (who must close them); undefined if not held. */
  take(tap: string): readonly number[] | undefined {
    const fds = this.#held.get(tap);
    this.#held.delete(tap);
    return fds;
  }

  /** Closes the fds of those of `taps` held here: the kernel removes each such tap. */
  close(taps: readonly string[]): void {
    for (const tap of taps) closeFds(this.take(tap) ?? []);
  }

  closeAll(): void {
    this.close([...this.#held.keys()]);
  }
}

/** Closes fds, ignoring one already closed (EBADF cannot happen to fds only this process had). */
export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
