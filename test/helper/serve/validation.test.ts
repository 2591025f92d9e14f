// Well-framed, well-decoded maps that are not valid requests. Each gets an error reply with a
// stable code and a sentence, carrying the request's id when the id itself is readable (else 0);
// the connection stays open and usable, nothing is created, no session is recorded, exactly one
// audit record is written, and the helper keeps serving everyone (invariants 2 and 6).
import { test } from '../../support/suite.js';
import { closeBench, hostile, hostileSequence, links, MapOf, mp, openBench, Raw, type Bench, type MpValue } from './support.js';
import { rawFrame } from './wire.js';

let bench: Bench | undefined;
const b = (): Bench => {
  if (bench === undefined) throw new Error('no bench');
  return bench;
};

test.before(async () => {
  bench = await openBench();
});

test.after(async () => {
  await closeBench(bench);
});

type Build = (id: number) => MpValue;
interface Case {
  readonly what: string;
  readonly build: Build;
  readonly code: string | readonly string[];
  /** the reply carries the request's id (else 0: the id is what is wrong) */
  readonly idReadable: boolean;
  readonly mentions?: RegExp;
}

const mk = (id: number, extra: Record<string, MpValue> = {}): Record<string, MpValue> =>
  ({ v: 1, id, op: 'make-nics', bridges: ['br0'], lifetime: 'session', ...extra });
const without = (o: Record<string, MpValue>, key: string): Record<string, MpValue> => {
  const copy = { ...o };
  delete copy[key];
  return copy;
};
const oc = (id: number, ports: MpValue): Record<string, MpValue> => ({ v: 1, id, op: 'ovs-cleanup', ports });
const u64 = (n: bigint): Raw => {
  const buf = Buffer.alloc(9);
  buf[0] = 0xcf;
  buf.writeBigUInt64BE(n, 1);
  return new Raw(buf);
};

const f64 = (n: number): Raw => {
  const buf = Buffer.alloc(9);
  buf[0] = 0xcb;
  buf.writeDoubleBE(n, 1);
  return new Raw(buf);
};

const cases: Case[] = [
  // version
  { what: 'a request without "v"', build: (id) => without(mk(id), 'v'), code: ['BAD_VERSION', 'BAD_REQUEST'], idReadable: true, mentions: /"v"/ },
  { what: 'a request with v: 2', build: (id) => mk(id, { v: 2 }), code: 'BAD_VERSION', idReadable: true, mentions: /"v"/ },
  { what: 'a request with v: "1" (a string)', build: (id) => mk(id, { v: '1' }), code: ['BAD_VERSION', 'BAD_REQUEST'], idReadable: true },
  // id
  { what: 'a request without "id"', build: (id) => without(mk(id), 'id'), code: 'BAD_REQUEST', idReadable: false, mentions: /"id"/ },
  { what: 'a request with id -1', build: (id) => mk(id, { id: -1 }), code: 'BAD_REQUEST', idReadable: false, mentions: /"id"/ },
  { what: 'a request with id 1.5', build: (id) => mk(id, { id: 1.5 }), code: 'BAD_REQUEST', idReadable: false, mentions: /"id"/ },
  { what: 'a request with id 2^32 written as a float', build: (id) => mk(id, { id: f64(2 ** 32) }), code: 'BAD_REQUEST', idReadable: false },
  { what: 'a request with id 2^32 (a uint64, the only integer encoding for it)', build: (id) => mk(id, { id: u64(2n ** 32n) }), code: 'BAD_REQUEST', idReadable: false, mentions: /"id"/ },
  { what: 'a request with id 2^64-1 (uint64)', build: (id) => mk(id, { id: u64(2n ** 64n - 1n) }), code: 'BAD_REQUEST', idReadable: false },
  { what: 'a request with id "5" (a string)', build: (id) => mk(id, { id: '5' }), code: 'BAD_REQUEST', idReadable: false, mentions: /"id"/ },
  { what: 'a request with id nil', build: (id) => mk(id, { id: null }), code: 'BAD_REQUEST', idReadable: false },
  // op
  { what: 'an unknown op', build: (id) => mk(id, { op: 'make-everything' }), code: 'UNKNOWN_OP', idReadable: true, mentions: /make-everything/ },
  { what: 'the reference\'s spelling "make_nics"', build: (id) => mk(id, { op: 'make_nics' }), code: 'UNKNOWN_OP', idReadable: true },
  { what: 'a request without "op"', build: (id) => without(mk(id), 'op'), code: ['UNKNOWN_OP', 'BAD_REQUEST'], idReadable: true, mentions: /"op"|op/ },
  { what: 'an op that is an integer', build: (id) => mk(id, { op: 1 }), code: ['UNKNOWN_OP', 'BAD_REQUEST'], idReadable: true },
  { what: 'an op that is an array', build: (id) => mk(id, { op: ['make-nics'] }), code: ['UNKNOWN_OP', 'BAD_REQUEST'], idReadable: true },
  { what: 'an op that is a map', build: (id) => mk(id, { op: { name: 'make-nics' } }), code: ['UNKNOWN_OP', 'BAD_REQUEST'], idReadable: true },
  // unknown keys
  { what: 'an unknown top-level key "uid"', build: (id) => mk(id, { uid: 0 }), code: 'BAD_REQUEST', idReadable: true, mentions: /"uid"/ },
  { what: 'an unknown top-level key "user"', build: (id) => mk(id, { user: 'root' }), code: 'BAD_REQUEST', idReadable: true, mentions: /"user"/ },
  { what: 'a "ports" key in make-nics', build: (id) => mk(id, { ports: [{ bridge: 'br0', tap: 'xkvmx' }] }), code: 'BAD_REQUEST', idReadable: true, mentions: /ports/ },
  { what: 'a "bridges" key in ovs-cleanup', build: (id) => ({ ...oc(id, [{ bridge: 'br0', tap: 'xkvmx' }]), bridges: ['br0'] }), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: 'an unknown key inside a port', build: (id) => oc(id, [{ bridge: 'br0', tap: 'xkvmx', owner: 0 }]), code: 'BAD_REQUEST', idReadable: true, mentions: /owner/ },
  // bridges
  { what: 'a make-nics without "bridges"', build: (id) => without(mk(id), 'bridges'), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: 'bridges as a string', build: (id) => mk(id, { bridges: 'br0' }), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: 'bridges as a map', build: (id) => mk(id, { bridges: { 0: 'br0' } }), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: 'bridges as nil', build: (id) => mk(id, { bridges: null }), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: 'an empty bridges list', build: (id) => mk(id, { bridges: [] }), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: '65 bridges', build: (id) => mk(id, { bridges: new Array<string>(65).fill('br0') }), code: 'BAD_REQUEST', idReadable: true, mentions: /65|64/ },
  { what: 'a bridge that is an integer', build: (id) => mk(id, { bridges: [0] }), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /bridges\[0\]/ },
  { what: 'a bridge that is nil', build: (id) => mk(id, { bridges: ['br0', null] }), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /bridges\[1\]/ },
  { what: 'a bridge that is an array', build: (id) => mk(id, { bridges: [['br0']] }), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /bridges\[0\]/ },
  // lifetime
  { what: 'lifetime "forever"', build: (id) => mk(id, { lifetime: 'forever' }), code: 'BAD_REQUEST', idReadable: true, mentions: /lifetime/ },
  { what: 'lifetime "Session" (case matters)', build: (id) => mk(id, { lifetime: 'Session' }), code: 'BAD_REQUEST', idReadable: true, mentions: /lifetime/ },
  { what: 'lifetime nil', build: (id) => mk(id, { lifetime: null }), code: 'BAD_REQUEST', idReadable: true, mentions: /lifetime/ },
  { what: 'lifetime 1', build: (id) => mk(id, { lifetime: 1 }), code: 'BAD_REQUEST', idReadable: true, mentions: /lifetime/ },
  { what: 'lifetime in an ovs-cleanup', build: (id) => ({ ...oc(id, [{ bridge: 'br0', tap: 'xkvmx' }]), lifetime: 'session' }), code: 'BAD_REQUEST', idReadable: true, mentions: /lifetime/ },
  // ovs-cleanup shapes
  { what: 'ovs-cleanup without "ports"', build: (id) => ({ v: 1, id, op: 'ovs-cleanup' }), code: 'BAD_REQUEST', idReadable: true, mentions: /ports/ },
  { what: 'ports as a string', build: (id) => oc(id, 'br0:xkvmx'), code: 'BAD_REQUEST', idReadable: true, mentions: /ports/ },
  { what: 'an empty ports list', build: (id) => oc(id, []), code: 'BAD_REQUEST', idReadable: true, mentions: /ports/ },
  { what: '65 ports', build: (id) => oc(id, new Array<MpValue>(65).fill({ bridge: 'br0', tap: 'xkvmx' })), code: 'BAD_REQUEST', idReadable: true, mentions: /65|64/ },
  { what: 'a port that is a string', build: (id) => oc(id, ['br0:xkvmx']), code: 'BAD_REQUEST', idReadable: true, mentions: /ports\[0\]/ },
  { what: 'a port without "tap"', build: (id) => oc(id, [{ bridge: 'br0' }]), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /ports\[0\]/ },
  { what: 'a port without "bridge"', build: (id) => oc(id, [{ tap: 'xkvmx' }]), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /ports\[0\]/ },
  { what: 'a port whose tap starts with "-"', build: (id) => oc(id, [{ bridge: 'br0', tap: '-xkvmx' }]), code: 'BAD_NAME', idReadable: true, mentions: /ports\[0\]\.tap/ },
  { what: 'a port whose tap is "../lo"', build: (id) => oc(id, [{ bridge: 'br0', tap: '../lo' }]), code: 'BAD_NAME', idReadable: true, mentions: /ports\[0\]\.tap/ },
  { what: 'a port whose tap is 16 bytes', build: (id) => oc(id, [{ bridge: 'br0', tap: 'x'.repeat(16) }]), code: 'BAD_NAME', idReadable: true, mentions: /ports\[0\]\.tap/ },
  { what: 'a second port whose bridge holds a ";"', build: (id) => oc(id, [{ bridge: 'br0', tap: 'xkvmx' }, { bridge: 'br0;reboot', tap: 'xkvmy' }]), code: 'BAD_NAME', idReadable: true, mentions: /ports\[1\]\.bridge/ },
  { what: 'a port whose tap is an integer', build: (id) => oc(id, [{ bridge: 'br0', tap: 7 }]), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /ports\[0\]\.tap/ },
];

// Interface names (invariant 2): each as the first bridge of a make-nics, and as a port's bridge.
const badNames: Array<[string, string]> = [
  ['16 bytes', 'abcdefghijklmnop'],
  ['16 bytes of 8 "é"', 'éééééééé'],
  ['empty', ''],
  ['with ";"', 'br0;reboot'],
  ['with "/"', 'br/0'],
  ['with a space', 'br 0'],
  ['with a NUL', 'br\u00000'],
  ['with a newline', 'br0\nbr1'],
  ['with a tab', 'br0\t'],
  ['with a non-ASCII "é"', 'bré'],
  ['with "$(...)"', '$(reboot)'],
  ['with a backquote', '`id`'],
  ['with ":" (an alias)', 'br0:1'],
  ['with a leading "-"', '-br0'],
  ['that is "--help"', '--help'],
  ['with a leading "."', '.br0'],
  ['"."', '.'],
  ['".."', '..'],
  ['with an escape sequence', '\u001b[31mbr0'],
];
for (const [what, name] of badNames) {
  // as a make-nics bridge, then a port's bridge and a port's tap, on one connection
  test(`an interface name ${what} gets BAD_NAME with its id as a bridge, a port's bridge and a port's tap, on a connection that stays usable, and nothing else happens`, async () => {
    const steps = [
      { field: /bridges\[0\]/, build: (id: number): MpValue => mk(id, { bridges: [name] }) },
      { field: /ports\[0\]\.bridge/, build: (id: number): MpValue => oc(id, [{ bridge: name, tap: 'xkvmx' }]) },
      { field: /ports\[0\]\.tap/, build: (id: number): MpValue => oc(id, [{ bridge: 'br0', tap: name }]) },
    ].map((s) => {
      const id = b().id();
      return { bytes: rawFrame(mp(s.build(id))), expect: { code: 'BAD_NAME', id, closes: false, mentions: s.field }, context: `${what}, ${s.field.source}` };
    });
    await hostileSequence(b(), steps, `a name ${what}`);
  });
}
cases.push({ what: 'a bad name after a good one', build: (id) => mk(id, { bridges: ['br0', 'br1', '-x'] }), code: 'BAD_NAME', idReadable: true, mentions: /bridges\[2\]/ });

for (const c of cases) {
  test(`${c.what} gets ${typeof c.code === 'string' ? c.code : c.code.join('/')}${c.idReadable ? ' with its id' : ' (id 0)'}, on a connection that stays usable, and nothing else happens`, async () => {
    const id = b().id();
    await hostile(b(), rawFrame(mp(c.build(id))), {
      code: c.code, id: c.idReadable ? id : 0, closes: false, ...(c.mentions === undefined ? {} : { mentions: c.mentions }),
    }, c.what);
  });
}

test('an unknown key or op is quoted in the reply without raw control characters and at a bounded length', async () => {
  const id = b().id();
  const key = `\u001b]0;owned\u0007${'k'.repeat(2000)}`;
  await hostile(b(), rawFrame(mp(new MapOf([['v', 1], ['id', id], ['op', 'make-nics'], ['bridges', ['br0']], [key, 1]]))),
    { code: 'BAD_REQUEST', id, closes: false }, 'a 2 KiB unknown key with an OSC escape');
  const id2 = b().id();
  await hostile(b(), rawFrame(mp(mk(id2, { op: '\u001b[2J\u001b[Hmake-nics' }))), { code: 'UNKNOWN_OP', id: id2, closes: false }, 'an op with escapes');
});

test('the namespace holds only its bridges and lo after every case', () => {
  // every case compared before/after; this checks nothing leaked across cases either
  const now = links(b().ns);
  if (now.join(',') !== 'br0,br1,lo') throw new Error(`devices left: ${now.join(', ')}`);
});

test.run();
