#!/usr/bin/env node
/**
 * `npm start`: the first run. Makes a tiny guest (a boot sector, no download) in the user's
 * cache directory and boots it through xkvm with user networking, under TCG when there is no
 * KVM, showing its serial console; it powers itself off within seconds.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../cache/json-file.js';
import { writeTinyGuest } from './guest-image.js';
import { launch } from '../launch.js';
import { ClientError } from '../errors.js';

async function main(): Promise<number> {
  const dir = cacheDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const image = join(dir, 'tiny-guest.img');
  await writeTinyGuest(image);
  process.stderr.write(`xkvm demo: booting ${image} (user networking, serial console; it powers off by itself)\n`);
  const extra = process.argv.slice(2);
  return launch(['--netdev', 'user', '--disk', image, '--no-reboot', ...extra, '--', '-m', '32', '-nographic'], 'xkvm');
}

main().then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`xkvm demo: ${error instanceof ClientError ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
