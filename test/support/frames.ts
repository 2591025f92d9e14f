// Frames written into a tap by its owner, and a capture on the other side (root only):
//
//   const capture = await startCapture(ns, 'br0');
//   const writer = startFrames(ns, user, tap, [spoofed, locked]);
//   await waitFor(() => capture.count(locked) >= 3, PATIENCE_MS);
//   writer.stop(); capture.stop();
//
// The writer attaches to the tap as its owner (TUNSETIFF on /dev/net/tun, as qemu does) and writes,
// round after round, one broadcast frame (EtherType 0x88b5, for local experiments) from each
// source MAC in the order given, until stopped. A frame from the last MAC seen on the other side
// means the path was open when the frames before it in that round were written: so "the locked MAC
// arrived three times and the spoofed one never did" holds without timing anything.
import type { ChildProcess } from 'node:child_process';
import type { Netns, TestUser } from './netns.js';
import { PATIENCE_MS, waitFor } from './wait.js';

const TEST_ETHERTYPE = '0x88b5';

const WRITER = `
import fcntl, os, struct, sys, time
TUNSETIFF = 0x400454ca
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH22x', sys.argv[1].encode(), IFF_TAP | IFF_NO_PI))
frames = [b'\\xff' * 6 + bytes.fromhex(m.replace(':', '')) + b'\\x88\\xb5' + b'xkvm test frame'.ljust(46, b'\\0') for m in sys.argv[2:]]
for _ in range(3000):
    for f in frames:
        os.write(fd, f)
    time.sleep(0.02)
`;

export interface Writer {
  stop(): void;
}

/** `user` writes frames from `macs` into `tap`, round after round, until stop() (at most ~60 s). */
export function startFrames(ns: Netns, user: TestUser, tap: string, macs: readonly string[]): Writer {
  const child = ns.spawn(['/usr/bin/python3', '-c', WRITER, tap, ...macs], { user: user.name, openTun: true, stdio: ['ignore', 'ignore', 'pipe'] });
  return { stop: () => stopChild(child) };
}

export interface Capture {
  /** How many test frames from `mac` the capture has seen so far. */
  count(mac: string): number;
  /** The source MACs seen so far, each once. */
  sources(): string[];
  stop(): void;
}

function stopChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** tcpdump on `dev` in the namespace for the test frames, once it listens. */
export async function startCapture(ns: Netns, dev: string): Promise<Capture> {
  const child = ns.spawn(['/usr/bin/tcpdump', '-i', dev, '-n', '-e', '-l', '-p', 'ether', 'proto', TEST_ETHERTYPE], { stdio: ['ignore', 'pipe', 'pipe'] });
  const seen: string[] = [];
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    out += chunk;
    const lines = out.split('\n');
    out = lines.pop() ?? '';
    for (const line of lines) {
      const m = /^\S+ ([0-9a-f]{2}(?::[0-9a-f]{2}){5}) > /.exec(line);
      if (m !== null) seen.push(m[1]!);
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => { err += chunk; });
  try {
    await waitFor(() => err.includes('listening on') || child.exitCode !== null, PATIENCE_MS, { what: `tcpdump on ${dev} to listen` });
    if (!err.includes('listening on')) throw new Error(`tcpdump on ${dev} did not start: ${err}`);
  } catch (error) {
    stopChild(child);
    throw error;
  }
  return {
    count: (mac) => seen.filter((s) => s === mac).length,
    sources: () => [...new Set(seen)],
    stop: () => stopChild(child),
  };
}
