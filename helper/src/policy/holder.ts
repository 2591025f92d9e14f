/**
 * The policy in force. Loaded at start (a broken policy refuses to start); re-read when the
 * file changes. A policy that breaks while the helper runs denies everything until fixed
 * (fail closed), and says so in the audit log.
 */
import { statSync } from 'node:fs';
import { loadPolicy, type ParseOptions } from './parse.js';
import type { Policy } from './types.js';

function stamp(files: readonly string[]): string {
  return files.map((f) => {
    try {
      const st = statSync(f, { bigint: true });
      return `${st.ino}:${st.size}:${st.mtimeNs}`;
    } catch {
      return 'missing';
    }
  }).join('|');
}

export class PolicyHolder {
  readonly file: string;
  readonly #options: ParseOptions;
  #policy: Policy;
  #stamp: string;
  #broken: Error | undefined;

  /** Throws PolicyError when the policy cannot be read or parsed. */
  constructor(file: string, options: ParseOptions = {}) {
    this.file = file;
    this.#options = options;
    this.#policy = loadPolicy(file, options);
    this.#stamp = stamp(this.#policy.files);
  }

  /**
   * The `ovsdb` option for the network layer, from the last policy read (no re-check: callers
   * have just called current(), and removing taps must work even while the policy is broken).
   */
  ovsdbOption(): { ovsdb?: string } {
    const ovsdb = this.#policy.ovsdb?.value;
    return ovsdb === undefined ? {} : { ovsdb };
  }

  /** The current policy, or the error that makes it unusable. */
  current(): { policy: Policy } | { error: Error } {
    const now = stamp(this.#policy.files.length > 0 ? this.#policy.files : [this.file]);
    if (now !== this.#stamp) {
      this.#stamp = now;
      try {
        this.#policy = loadPolicy(this.file, this.#options);
        this.#stamp = stamp(this.#policy.files);
        this.#broken = undefined;
      } catch (error) {
        this.#broken = error as Error;
      }
    }
    return this.#broken === undefined ? { policy: this.#policy } : { error: this.#broken };
  }
}
