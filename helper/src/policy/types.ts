/**
 * The policy as parsed from helper.conf and its includes: every directive in file order
 * (includes expanded in place), each with the file, line and text it came from, so a decision
 * or an audit record can name the line that made it.
 */

/** Where a directive was written. `text` is the directive as written, trimmed, without its comment. */
export interface RuleSource {
  readonly file: string;
  readonly line: number;
  readonly text: string;
}

/** WHO: a user name, `@group`, or `*` (anyone). */
export type Who =
  | { readonly kind: 'user'; readonly name: string }
  | { readonly kind: 'group'; readonly name: string }
  | { readonly kind: 'anyone' };

/** `*` matches every bridge; anything else is an exact interface name. */
export const ANY_BRIDGE = '*';

export interface AccessDirective {
  readonly kind: 'allow' | 'deny';
  readonly bridge: string;
  readonly who: readonly Who[];
  readonly source: RuleSource;
}

/**
 * `max-taps N [WHO...]`, `max-connections N [WHO...]` and `max-queues N [WHO...]`: with no WHO
 * (or with `*`) it sets the default.
 */
interface LimitDirective {
  readonly kind: 'max-taps' | 'max-connections' | 'max-queues';
  readonly limit: number;
  readonly who: readonly Who[];
  readonly source: RuleSource;
}

/** `vlan BRIDGE VID WHO...`: WHO's taps on BRIDGE (a bridge name, never `*`) are access ports of VLAN VID. */
export interface VlanDirective {
  readonly kind: 'vlan';
  readonly bridge: string;
  readonly vid: number;
  readonly who: readonly Who[];
  readonly source: RuleSource;
}

/** `mac-lock BRIDGE WHO...`: WHO's taps on BRIDGE (or on any bridge, `*`) may send only from the MAC of the request. */
export interface MacLockDirective {
  readonly kind: 'mac-lock';
  readonly bridge: string;
  readonly who: readonly Who[];
  readonly source: RuleSource;
}

interface OvsdbDirective {
  readonly kind: 'ovsdb';
  readonly socket: string;
  readonly source: RuleSource;
}

interface AuditLogDirective {
  readonly kind: 'audit-log';
  readonly path: string;
  readonly source: RuleSource;
}

/** `include PATH`; `path` is resolved (absolute). The included directives follow it in order. */
interface IncludeDirective {
  readonly kind: 'include';
  readonly path: string;
  /** How deep this include is nested: 1 for an include in the main file. */
  readonly depth: number;
  readonly source: RuleSource;
}

export type Directive =
  | AccessDirective
  | LimitDirective
  | VlanDirective
  | MacLockDirective
  | OvsdbDirective
  | AuditLogDirective
  | IncludeDirective;

/** A setting together with the line that set it. */
export interface Sourced<T> {
  readonly value: T;
  readonly source: RuleSource;
}

export interface Policy {
  /** The main file, as given. */
  readonly file: string;
  /** Every file read, main file first, in the order they were read. */
  readonly files: readonly string[];
  /** Every directive, includes expanded in place (each include line precedes its contents). */
  readonly directives: readonly Directive[];
  /** allow and deny lines, in order. */
  readonly access: readonly AccessDirective[];
  /** The default max-taps, if a line set it (`max-taps N` or `max-taps N *`). */
  readonly defaultMaxTaps: Sourced<number> | undefined;
  /** Per-user max-taps, by user name (at most one line per user). */
  readonly userMaxTaps: ReadonlyMap<string, Sourced<number>>;
  /** Per-group max-taps, by group name (at most one line per group). */
  readonly groupMaxTaps: ReadonlyMap<string, Sourced<number>>;
  /** max-connections, the same way: the default line, per-user and per-group lines. */
  readonly defaultMaxConnections: Sourced<number> | undefined;
  readonly userMaxConnections: ReadonlyMap<string, Sourced<number>>;
  readonly groupMaxConnections: ReadonlyMap<string, Sourced<number>>;
  /** max-queues, the same way. */
  readonly defaultMaxQueues: Sourced<number> | undefined;
  readonly userMaxQueues: ReadonlyMap<string, Sourced<number>>;
  readonly groupMaxQueues: ReadonlyMap<string, Sourced<number>>;
  /** vlan lines, in order (no two of one rank give one WHO different VLANs on one bridge). */
  readonly vlans: readonly VlanDirective[];
  /** mac-lock lines, in order. */
  readonly macLocks: readonly MacLockDirective[];
  readonly ovsdb: Sourced<string> | undefined;
  readonly auditLog: Sourced<string> | undefined;
}

/** The caller as the policy sees it: user name, uid, and every group name it belongs to. */
export interface PolicyUser {
  readonly name: string;
  readonly uid: number;
  readonly groups: readonly string[];
}
