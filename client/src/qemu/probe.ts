/** Which properties a qemu device model has, asked of qemu itself (cached). */
import { escapeForTerminal } from '../../../shared/src/text/escape.js';
import { ClientError } from '../errors.js';
import { childProcess } from '../lazy.js';
import { parseDeviceHelp } from './device-help.js';
import type { ProbeCache } from './probe-cache.js';

export interface DeviceProber {
  /** Property names of `model`; throws ClientError when qemu does not know the model. */
  properties(model: string): readonly string[];
}

function runDeviceHelp(qemu: string, model: string): string[] {
  const result = childProcess().spawnSync(qemu, ['-device', `${model},help`], {
    encoding: 'utf8',
    env: { ...process.env, LANG: 'C', LC_ALL: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  if (result.error !== undefined) {
    throw new ClientError('QEMU_PROBE', `cannot run ${qemu} to ask about device model '${model}': ${result.error.message}`, { cause: result.error });
  }
  const firstLine = (result.stderr || result.stdout || '').trim().split('\n')[0] ?? '';
  // qemu 7 exits 0 for an unknown model, saying "Device 'X' not found" on stderr.
  if (result.status !== 0 || /Device '.*' not found/.test(result.stderr)) {
    throw new ClientError(
      'QEMU_PROBE',
      `qemu does not know device model '${escapeForTerminal(model)}' (${escapeForTerminal(firstLine)}); ` +
        `list the models with: ${qemu} -device help`,
    );
  }
  return parseDeviceHelp(result.stdout);
}

export class QemuDeviceProber implements DeviceProber {
  readonly #qemu: string;
  readonly #cache: ProbeCache | undefined;
  readonly #memo = new Map<string, readonly string[]>();

  constructor(qemu: string, cache?: ProbeCache) {
    this.#qemu = qemu;
    this.#cache = cache;
  }

  properties(model: string): readonly string[] {
    const known = this.#memo.get(model) ?? this.#cache?.get(this.#qemu, model);
    if (known !== undefined) {
      this.#memo.set(model, known);
      return known;
    }
    const found = runDeviceHelp(this.#qemu, model);
    this.#memo.set(model, found);
    this.#cache?.set(this.#qemu, model, found);
    return found;
  }
}

/** The reference's test: the token's name (text before the first '=') is a property of the model. */
export function isDeviceOption(prober: DeviceProber, model: string, token: string): boolean {
  const eq = token.indexOf('=');
  const name = eq === -1 ? token : token.slice(0, eq);
  return prober.properties(model).includes(name);
}
