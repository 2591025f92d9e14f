// Well-framed, well-decoded maps that are not valid requests. Each gets an error reply with a
// stable code and a sentence, carrying the request's id when the id itself is readable (else 0);
// the connection stays open and usable, nothing is created, no session is recorded, exactly one
// audit record is written, and the helper keeps serving everyone (invariants 2 and 6).
import { test } from '../../support/suite.js';
import { badNames, badRequests, nameUses, quotedInReplies } from './cases.js';
import { hostile, useBench, hostileSequence, links, mp } from './support.js';
import { rawFrame } from './wire.js';

const b = useBench(test);

for (const [what, name] of badNames) {
  // as a make-nics bridge, then a port's bridge and a port's tap, on one connection
  test(`an interface name ${what} gets BAD_NAME with its id as a bridge, a port's bridge and a port's tap, on a connection that stays usable, and nothing else happens`, async () => {
    const steps = nameUses.map((s) => {
      const id = b().id();
      return { bytes: rawFrame(mp(s.build(id, name))), expect: { code: 'BAD_NAME', id, closes: false, mentions: s.field }, context: `${what}, ${s.field.source}` };
    });
    await hostileSequence(b(), steps, `a name ${what}`);
  });
}

for (const c of badRequests) {
  test(`${c.what} gets ${typeof c.code === 'string' ? c.code : c.code.join('/')}${c.idReadable ? ' with its id' : ' (id 0)'}, on a connection that stays usable, and nothing else happens`, async () => {
    const id = b().id();
    await hostile(b(), rawFrame(mp(c.build(id))), {
      code: c.code, id: c.idReadable ? id : 0, closes: false, ...(c.mentions === undefined ? {} : { mentions: c.mentions }),
    }, c.what);
  });
}

test('an unknown key or op is quoted in the reply without raw control characters and at a bounded length', async () => {
  for (const c of quotedInReplies) {
    const id = b().id();
    await hostile(b(), rawFrame(mp(c.build(id))), { code: c.code, id, closes: false }, c.what);
  }
});

test('the namespace holds only its bridges and lo after every case', () => {
  // every case compared before/after; this checks nothing leaked across cases either
  const now = links(b().ns);
  if (now.join(',') !== 'br0,br1,lo') throw new Error(`devices left: ${now.join(', ')}`);
});

test.run();
