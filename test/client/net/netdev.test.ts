import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ClientError } from '../../../client/src/errors.js';
import { planNetdev, splitFields, type NetdevContext } from '../../../client/src/net/netdev.js';
import { FakeProber } from '../support/fake-prober.js';

const MODELS = {
  'virtio-net-pci': ['addr', 'bootindex', 'mac', 'romfile', 'netdev', 'vectors', 'mq', 'host_mtu', 'x-txtimer'],
  'virtio-net-ccw': ['devno', 'mac', 'netdev', 'bootindex'],
  e1000: ['addr', 'bootindex', 'mac', 'romfile', 'netdev', 'autonegotiation'],
};

function ctx(extra: Partial<NetdevContext> = {}): NetdevContext & { prober: FakeProber } {
  return { defaultModel: 'virtio-net-pci', virtioModel: 'virtio-net-pci', prober: new FakeProber(MODELS), ...extra } as NetdevContext & { prober: FakeProber };
}

function badNetdev(spec: string): ClientError {
  let caught: unknown;
  try {
    planNetdev(spec, 0, ctx());
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, ClientError, `'${spec}' was accepted`);
  assert.is((caught as ClientError).code, 'BAD_NETDEV');
  return caught as ClientError;
}

test('user networking: a user netdev and the default model, nothing asked of qemu without extra fields', () => {
  const c = ctx();
  assert.equal(planNetdev('user', 0, c), {
    connection: 'user', id: 'net00', device: 'virtio-net-pci,netdev=net00', netdev: 'type=user,id=net00',
  });
  assert.equal(c.prober.asked, []);
});

test('a bridge: a tap netdev without scripts, id from the index', () => {
  assert.equal(planNetdev('br0', 1, ctx()), {
    connection: 'br0', id: 'net01', device: 'virtio-net-pci,netdev=net01', netdev: 'type=tap,id=net01,script=no,downscript=no',
  });
  assert.is(planNetdev('virbr0', 12, ctx()).id, 'net12');
});

test('model=virtio is the architecture\'s virtio model; other models are used as named', () => {
  assert.is(planNetdev('br0,model=virtio', 0, ctx()).device, 'virtio-net-pci,netdev=net00');
  assert.is(planNetdev('br0,model=virtio', 0, ctx({ virtioModel: 'virtio-net-ccw', defaultModel: 'virtio-net-ccw' })).device, 'virtio-net-ccw,netdev=net00');
  assert.is(planNetdev('br0,model=e1000', 0, ctx()).device, 'e1000,netdev=net00');
  assert.is(planNetdev('user', 0, ctx({ defaultModel: 'e1000' })).device, 'e1000,netdev=net00');
});

test('the last model= wins, and the fields are routed by that model\'s properties', () => {
  const c = ctx();
  const plan = planNetdev('br0,model=virtio,autonegotiation=on,model=e1000', 0, c);
  assert.is(plan.device, 'e1000,netdev=net00,autonegotiation=on');
  assert.equal([...new Set(c.prober.asked)], ['e1000']);
  const back = planNetdev('br0,model=e1000,autonegotiation=on,model=virtio', 0, ctx());
  assert.is(back.device, 'virtio-net-pci,netdev=net00');
  assert.is(back.netdev, 'type=tap,id=net00,script=no,downscript=no,autonegotiation=on');
});

test('mac= and macaddr= are padded onto the device after its other fields', () => {
  assert.is(planNetdev('br0,mac=:05,bootindex=1', 0, ctx()).device, 'virtio-net-pci,netdev=net00,bootindex=1,mac=52:54:00:12:34:05');
  assert.is(planNetdev('user,macaddr=12:34:56', 0, ctx()).device, 'virtio-net-pci,netdev=net00,mac=52:54:00:12:34:56');
  assert.is(planNetdev('user,mac=', 4, ctx()).device, 'virtio-net-pci,netdev=net04,mac=52:54:00:12:34:04');
});

test('the last mac=/macaddr= wins and mac=auto leaves the MAC to qemu', () => {
  assert.is(planNetdev('br0,mac=:01,macaddr=:02', 0, ctx()).device, 'virtio-net-pci,netdev=net00,mac=52:54:00:12:34:02');
  assert.is(planNetdev('br0,mac=:01,mac=auto', 0, ctx()).device, 'virtio-net-pci,netdev=net00');
  assert.is(planNetdev('br0,mac=auto', 0, ctx()).netdev, 'type=tap,id=net00,script=no,downscript=no');
});

test('mac=random draws from the injected random source', () => {
  const plan = planNetdev('user,mac=random', 0, ctx({ random: () => Buffer.from([1, 2, 0xfe]) }));
  assert.is(plan.device, 'virtio-net-pci,netdev=net00,mac=52:54:00:01:02:fe');
});

test('a bad mac= is refused', () => {
  assert.throws(() => planNetdev('br0,mac=zz', 0, ctx()), (e: unknown) => e instanceof ClientError && e.code === 'BAD_MAC');
});

test('fields go to -device when the model has a property of that name (text before "="), else to -netdev', () => {
  const plan = planNetdev('br0,vhost=on,bootindex=2,queues=4,addr=0x5,romfile=,addrx=1,mq', 0, ctx());
  assert.is(plan.device, 'virtio-net-pci,netdev=net00,bootindex=2,addr=0x5,romfile=,mq');
  assert.is(plan.netdev, 'type=tap,id=net00,script=no,downscript=no,vhost=on,queues=4,addrx=1');
});

test('a property whose name only starts like a field is not a match (x-txtimer vs x-tx)', () => {
  assert.is(planNetdev('user,x-tx=1', 0, ctx()).netdev, 'type=user,id=net00,x-tx=1');
  assert.is(planNetdev('user,x-txtimer=1', 0, ctx()).device, 'virtio-net-pci,netdev=net00,x-txtimer=1');
});

test('an unknown model is an error from the prober', () => {
  assert.throws(() => planNetdev('br0,model=nosuch,vhost=on', 0, ctx()), (e: unknown) => e instanceof ClientError && e.code === 'QEMU_PROBE');
});

test('model= without a value is refused', () => {
  assert.match(badNetdev('br0,model=').message, /model=/);
});

test('a first field that is neither user nor a valid bridge name is refused, naming the rule', () => {
  for (const spec of ['-br0', '.br', 'br/0', 'br 0', 'averyveryverylong', 'br0$', 'brü']) {
    const error = badNetdev(spec);
    assert.match(error.message, /bridge name/);
  }
  assert.is(planNetdev('br-lan.10', 0, ctx()).connection, 'br-lan.10');
  assert.is(planNetdev('abcdefghijklmno', 0, ctx()).connection, 'abcdefghijklmno');
});

test('an empty spec or empty first field is refused', () => {
  assert.match(badNetdev('').message, /first field/);
  assert.match(badNetdev(',model=e1000').message, /first field/);
});

test('empty fields in the middle are refused', () => {
  assert.match(badNetdev('br0,,vhost=on').message, /empty field/);
  assert.match(badNetdev('br0,vhost=on,,').message, /empty field/);
});

test('a single trailing comma is dropped as bash\'s IFS splitting does', () => {
  assert.equal(planNetdev('br0,vhost=on,', 0, ctx()), planNetdev('br0,vhost=on', 0, ctx()));
  assert.equal(planNetdev('user,', 0, ctx()), planNetdev('user', 0, ctx()));
  assert.equal(splitFields('a,b,'), ['a', 'b']);
  assert.equal(splitFields(''), []);
  assert.equal(splitFields('a,,b'), ['a', '', 'b']);
});

test('a tap\'s queues=N is kept for the helper (and stays on -netdev); a chosen MAC is kept too, mac=auto is not', () => {
  const plan = planNetdev('br0,queues=16,mq=on,vectors=34,mac=:09', 0, ctx());
  assert.is(plan.queues, 16);
  assert.is(plan.mac, '52:54:00:12:34:09');
  assert.is(plan.netdev, 'type=tap,id=net00,script=no,downscript=no,queues=16');
  assert.is(plan.device, 'virtio-net-pci,netdev=net00,mq=on,vectors=34,mac=52:54:00:12:34:09');
  assert.is(planNetdev('br0,queues=1', 0, ctx()).queues, 1);
  assert.not.ok('queues' in planNetdev('br0', 0, ctx()));
  assert.not.ok('mac' in planNetdev('br0,mac=auto', 0, ctx()));
  // User networking has no tap: its options are qemu's business, as before.
  assert.not.ok('queues' in planNetdev('user,queues=99', 0, ctx()));
});

test('queues= on a tap must be a whole number from 1 to 16, refused before the helper is asked, naming the spec and the range', () => {
  for (const bad of ['0', '17', '-1', '4.0', '04', 'four', '', '1e1', '999999999999']) {
    assert.throws(() => planNetdev(`br0,queues=${bad}`, 0, ctx()),
      (e: unknown) => e instanceof ClientError && e.code === 'BAD_NETDEV' && e.message.includes(`'br0,queues=${bad}'`) && e.message.includes('from 1 to 16'), bad);
  }
});

test.run();
