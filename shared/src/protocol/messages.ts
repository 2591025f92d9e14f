/** The two requests and their replies, exactly as docs/protocol.md pins them. */
export type Lifetime = 'session' | 'persistent';
type NicType = 'brctl' | 'ovs';

export interface MakeNicsRequest {
  v: 1;
  id: number;
  op: 'make-nics';
  bridges: string[];
  lifetime?: Lifetime;
}

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
  /** The tap's MTU (its bridge's). Always in a make-nics reply; absent where a nic is only named. */
  mtu?: number;
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
