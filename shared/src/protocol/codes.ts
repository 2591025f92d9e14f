/**
 * Error codes carried in `{ok: false, error: {code, message}}` replies.
 * Stable strings: scripts match on them, people read the message.
 */
export const ErrorCode = {
  /** Framing was broken (length out of range, truncated, too slow, not msgpack). */
  BadFrame: 'BAD_FRAME',
  /** The frame decoded but is not a valid request (wrong shape, type, unknown key). */
  BadRequest: 'BAD_REQUEST',
  /** A protocol version this helper does not speak. */
  BadVersion: 'BAD_VERSION',
  /** An op other than make-nics and ovs-cleanup. */
  UnknownOp: 'UNKNOWN_OP',
  /** An interface name outside the allowed form. */
  BadName: 'BAD_NAME',
  /** The policy does not allow this caller on this bridge. */
  Denied: 'DENIED',
  /** The caller would hold more taps than max-taps allows. */
  Quota: 'QUOTA',
  /** The bridge named does not exist. */
  NoSuchBridge: 'NO_SUCH_BRIDGE',
  /** The device or port belongs to someone else (or to no one we know). */
  NotOwner: 'NOT_OWNER',
  /** The port named is not on that bridge. */
  NoSuchPort: 'NO_SUCH_PORT',
  /** The caller could not be identified. */
  NoIdentity: 'NO_IDENTITY',
  /** A system tool (ip, ovs-vsctl) failed; the message says which and why. */
  SystemError: 'SYSTEM_ERROR',
  /** Anything unexpected; details go to the helper's log only. */
  Internal: 'INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
