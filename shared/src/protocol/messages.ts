/** The two requests and their replies, exactly as docs/protocol.md pins them. */
export type Lifetime = 'session' | 'persistent';
type NicType = 'brctl' | 'ovs';

/** How the taps are handed over: by name (the tap stays until removed) or as fds (issue 11). */
type Handoff = 'name' | 'fd';

/** One tap asked for: its bridge, optionally queues (1 to 16) and the MAC the guest will use. */
export interface NicRequest {
  bridge: string;
  queues?: number;
  /** Lowercase `xx:xx:xx:xx:xx:xx` after validation, unicast and not all zero. */
  mac?: string;
}

interface MakeNicsHead {
  v: 1;
  id: number;
  op: 'make-nics';
  lifetime?: Lifetime;
  handoff?: Handoff;
}

/** make-nics as parseRequest returns it: a request's `bridges` list becomes `nics` [{bridge}, ...]. */
export interface MakeNicsRequest extends MakeNicsHead {
  nics: NicRequest[];
}

/** make-nics as a client writes it: `nics`, or `bridges` (the form without per-NIC options), never both. */
export type MakeNicsMessage = MakeNicsHead & ({ nics: NicRequest[]; bridges?: never } | { bridges: string[]; nics?: never });

export interface Port {
  bridge: string;
  tap: string;
}

export interface OvsCleanupRequest {
  v: 1;
  id: number;
  op: 'ovs-cleanup';
  ports: Port[];
}

export type Request = MakeNicsRequest | OvsCleanupRequest;

export interface Nic {
  bridge: string;
  tap: string;
  type: NicType;
  /** The tap's MTU (its bridge's): always in a make-nics reply; absent where a nic is only named. */
  mtu?: number;
  /** In replies (docs/protocol.md): queues when > 1, the VLAN and the locked MAC the policy set. */
  queues?: number;
  vlan?: number;
  mac?: string;
}

export interface MakeNicsReply {
  v: 1;
  id: number;
  ok: true;
  nics: Nic[];
}

interface OvsCleanupReply {
  v: 1;
  id: number;
  ok: true;
  removed: Port[];
}

export interface ErrorReply {
  v: 1;
  id: number;
  ok: false;
  error: { code: string; message: string };
}

export type Reply = MakeNicsReply | OvsCleanupReply | ErrorReply;
