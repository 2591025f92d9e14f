#!/usr/bin/env node
// Builds helper/native/build/Release/peercred.node, the addon xkvm-helper uses to read
// SO_PEERCRED (who is on the other end of its socket), and fdpass.node beside it, the client's
// (receiving and passing on file descriptors; see docs/fd-handoff.md). package.json's "install"
// script runs this at `npm install` / `npm ci` / `npm rebuild`; it can also be run by hand.
//
// node-gyp is found the way npm scripts find it: $npm_config_node_gyp when set, else
// `node-gyp` on PATH, else the copy bundled with the npm that sits next to this Node.
// Nothing here goes through a shell.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const output = join(here, 'build', 'Release', 'peercred.node');
const clientOutput = join(here, 'build', 'Release', 'fdpass.node');

function isExecutableFile(path) {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where node-gyp is and how it was found, or undefined with the places looked at. */
function findNodeGyp(looked) {
  const fromNpm = process.env['npm_config_node_gyp'];
  if (fromNpm) {
    looked.push(`$npm_config_node_gyp (${fromNpm})`);
    if (existsSync(fromNpm)) return fromNpm;
  }
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'node-gyp');
    if (isExecutableFile(candidate)) return candidate;
  }
  looked.push('node-gyp on PATH');
  const bundled = [];
  const npmCli = process.env['npm_execpath'];
  if (npmCli) bundled.push(resolve(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const nodeDir = dirname(process.execPath);
  bundled.push(resolve(nodeDir, '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  bundled.push(resolve(nodeDir, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  for (const candidate of bundled) {
    looked.push(candidate);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Headers installed alongside the running Node (<prefix>/include/node), when npm has not
 * chosen a nodedir and they are for exactly this Node version: saves node-gyp a download.
 */
function localNodeDir() {
  if (process.env['npm_config_nodedir']) return undefined;
  const prefix = resolve(dirname(process.execPath), '..');
  const include = join(prefix, 'include', 'node');
  if (!existsSync(join(include, 'node_api.h')) || !existsSync(join(include, 'common.gypi'))) return undefined;
  try {
    const header = readFileSync(join(include, 'node_version.h'), 'utf8');
    const part = (name) => new RegExp(`#define\\s+${name}\\s+(\\d+)`).exec(header)?.[1];
    const version = `v${part('NODE_MAJOR_VERSION')}.${part('NODE_MINOR_VERSION')}.${part('NODE_PATCH_VERSION')}`;
    return version === process.version ? prefix : undefined;
  } catch {
    return undefined;
  }
}

function fail(what) {
  process.stderr.write(
    `\nxkvm: building the peer-credential addon (helper/native/build/Release/peercred.node) failed: ${what}. ` +
      'Without it xkvm-helper cannot tell who is connecting to its socket, so it cannot serve ' +
      'socket callers, nor take its quota lock (the pkexec path needs it too). Building needs a C compiler, make ' +
      'and Python 3, e.g. `apt-get install g++ make python3` (dnf: `dnf install gcc-c++ make ' +
      'python3`), plus node-gyp (bundled with npm). Then retry, as the user who installed ' +
      'xkvm, from the package directory: `npm rebuild` or `node helper/native/build.mjs`.\n\n',
  );
  process.exit(1);
}

const looked = [];
const nodeGyp = findNodeGyp(looked);
if (nodeGyp === undefined) fail(`node-gyp was not found (looked at: ${looked.join(', ')})`);

const args = ['rebuild'];
const nodedir = localNodeDir();
if (nodedir !== undefined) args.push(`--nodedir=${nodedir}`);
// A .js node-gyp runs under this very Node, so the addon is built for the Node that runs xkvm.
const [command, argv] = /\.[cm]?js$/.test(nodeGyp) ? [process.execPath, [nodeGyp, ...args]] : [nodeGyp, args];

const result = spawnSync(command, argv, { cwd: here, stdio: 'inherit', shell: false });
if (result.error) fail(`could not run ${command}: ${result.error.message}`);
if (result.signal) fail(`\`node-gyp ${args.join(' ')}\` was killed by ${result.signal}`);
if (result.status !== 0) fail(`\`node-gyp ${args.join(' ')}\` exited with status ${result.status} (its output is above)`);
for (const built of [output, clientOutput]) {
  if (!existsSync(built)) fail(`node-gyp succeeded but ${built} was not produced`);
}

for (const [built, fn] of [[output, 'peerCred'], [clientOutput, 'recvFds']]) {
  try {
    const addon = createRequire(import.meta.url)(built);
    if (typeof addon[fn] !== 'function') throw new Error(`it does not export ${fn}()`);
  } catch (error) {
    fail(`the built addon ${built} does not load: ${error instanceof Error ? error.message : String(error)}`);
  }
}
console.log(`xkvm: built ${output} and ${clientOutput}`);
