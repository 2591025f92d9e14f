import { spawnSync } from 'node:child_process';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { shellJoin } from '../../../client/src/qemu/quote.js';

/** Hand `line` to /bin/sh as shell code and return the words it splits it into. */
function shSplit(line: string): string[] {
  const script = `set -- ${line}\nfor a in "$@"; do printf '%s\\0' "$a"; done`;
  const r = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: '/home/nobody-here' }, cwd: '/' });
  assert.is(r.status, 0, r.stderr);
  const out = r.stdout;
  return out === '' ? [] : out.slice(0, -1).split('\0');
}

/** Run `line` itself as a command and return the argv its program received (via printf). */
function shRun(line: string): string[] {
  const r = spawnSync('/bin/sh', ['-c', line], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' }, cwd: '/' });
  assert.is(r.status, 0, r.stderr);
  return r.stdout === '' ? [] : r.stdout.slice(0, -1).split('\0');
}

const HARD_WORDS = [
  'plain', 'with space', "it's", 'say "hi"', '$HOME', '${HOME}', '$(id -u)', '`id -u`', 'back\\slash', '\\', "'", '"',
  '*', '?', '[a]', '/*', '', ' ', '~', '~root', '#not-a-comment', 'a#b', 'semi;colon', 'pipe|x', 'amp&', '>out', '<in',
  '(x)', '{a,b}', '!', 'tab\there', 'new\nline', 'é ü', "'\\''", '-x', '--', 'a=b', 'file=disk.img,if=virtio', 'x%y@z+1:2',
  '  leading and trailing  ', '\'"$`\\', 'end\\',
];

test('a POSIX shell splits the joined line back into exactly the words', () => {
  assert.equal(shSplit(shellJoin(HARD_WORDS)), HARD_WORDS);
});

test('each hard word survives on its own, including the empty word', () => {
  for (const word of HARD_WORDS) assert.equal(shSplit(shellJoin([word])), [word], `word ${JSON.stringify(word)}`);
});

test('a typical qemu command line stays readable: safe words are not quoted', () => {
  const argv = ['qemu-system-x86_64', '-accel', 'tcg', '-device', 'virtio-net-pci,netdev=net00,mac=52:54:00:12:34:05',
    '-netdev', 'type=tap,id=net00,script=no,downscript=no,ifname=tapvm0', '-drive', 'file=/var/lib/vm/a.img,id=disk00,if=none,format=qcow2,index=0'];
  assert.is(shellJoin(argv), argv.join(' '));
  assert.equal(shSplit(shellJoin(argv)), argv);
});

test('words needing quotes are quoted, and the line has one space between words', () => {
  assert.is(shellJoin(['a', 'b c', '']), "a 'b c' ''");
});

test('run as a command, the line gives its program exactly the argv', () => {
  const argv = ['printf', '%s\\0', ...HARD_WORDS];
  assert.equal(shRun(shellJoin(argv)), HARD_WORDS);
});

test.run();
