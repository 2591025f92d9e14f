// Opens one tap with the helper's openTap inside a network namespace and holds its fds:
//
//   ip netns exec NS node tap-worker.js '{"name":"xkvmfd%d","queues":2,"uid":4301}'
//
// It prints one JSON line, {"pid", "name", "fds"} or {"error": {"name", "code", "message"}},
// then reads stdin: the line "close" closes every fd and prints "closed"; "send PATH" connects to
// the Unix socket PATH, sends "reply" with the fds (sendWithFds), closes its own copies and
// prints "sent"; end of stdin exits.
import { once } from 'node:events';
import { closeSync } from 'node:fs';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { openTap, sendWithFds } from '../../../helper/src/native/fd-handoff.js';

interface Job {
  readonly name: string;
  readonly queues: number;
  readonly uid: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
let fds: readonly number[] = [];
try {
  const tap = openTap(job.name, job.queues, job.uid);
  fds = tap.fds;
  process.stdout.write(`${JSON.stringify({ pid: process.pid, name: tap.name, fds })}\n`);
} catch (error) {
  const e = error as { name?: string; code?: string; message?: string };
  process.stdout.write(`${JSON.stringify({ error: { name: e.name, code: e.code, message: e.message } })}\n`);
}
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'close') {
    for (const fd of fds) closeSync(fd);
    fds = [];
    process.stdout.write('closed\n');
  } else if (line.startsWith('send ')) {
    const socket = connect(line.slice('send '.length));
    await once(socket, 'connect');
    await sendWithFds(socket, Buffer.from('reply'), fds);
    for (const fd of fds) closeSync(fd);
    fds = [];
    process.stdout.write('sent\n');
  }
}
