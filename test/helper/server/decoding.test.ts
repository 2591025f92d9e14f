// Hostile frame bodies: well framed, but not one plain msgpack map of the allowed kinds. The
// helper decodes strictly (shared/src/protocol/decode.ts): such a frame gets BAD_FRAME (id 0,
// the request cannot be read) and the connection is closed; nothing else happens and everyone,
// including a new connection from the same client, is still served.
import { test } from '../../support/suite.js';
import { badFrames } from './cases.js';
import { hostile, useBench, MapOf, mp, Raw } from './support.js';
import { rawFrame } from './wire.js';

const b = useBench(test);

for (const [what, body, mentions] of badFrames) {
  test(`${what} is refused with BAD_FRAME, the connection closed, and nothing else happens`, async () => {
    await hostile(b(), rawFrame(body), { code: 'BAD_FRAME', id: 0, closes: true, ...(mentions === undefined ? {} : { mentions }) }, what);
  });
}

test('an id written as a 64-bit integer is read by its value: id 5 as uint64 is not "out of range"', async () => {
  // msgpack lets an encoder pick any width; 0xcf 00..05 is the number 5
  const body = mp(new MapOf([['v', 1], ['id', new Raw(Buffer.from([0xcf, 0, 0, 0, 0, 0, 0, 0, 5]))], ['op', 'make-nics'], ['bridges', ['-bad']]]));
  await hostile(b(), rawFrame(body), { code: 'BAD_NAME', id: 5, closes: false }, 'id 5 as uint64, then a bad name');
});

test.run();
