/** Numbers pinned by the wire contract (docs/protocol.md, "Wire format"). */
export const PROTOCOL_VERSION = 1;
/** Largest frame body in bytes; the smallest is 1. */
export const MAX_FRAME_BYTES = 65536;
/** A started frame must complete within this many milliseconds. */
export const FRAME_DEADLINE_MS = 5000;
/** Bytes of the big-endian length prefix. */
export const FRAME_HEADER_BYTES = 4;
/** Most bridges in one make-nics or ports in one ovs-cleanup (more than any max-taps makes sense). */
export const MAX_ITEMS_PER_REQUEST = 64;
/** Largest request id (ids are unsigned 32-bit). */
export const MAX_REQUEST_ID = 0xffff_ffff;
/** Most queues one tap may have (a request's `queues`; the policy's `max-queues` N). */
export const MAX_QUEUES = 16;
