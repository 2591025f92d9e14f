/**
 * Built-in modules that the common path never needs, loaded on first use: a warm --dry-run
 * spawns nothing and draws no random numbers, and loading node:child_process or node:crypto
 * up front costs it measurable start-up time.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const childProcess = (): typeof import('node:child_process') => require('node:child_process') as typeof import('node:child_process');
export const crypto = (): typeof import('node:crypto') => require('node:crypto') as typeof import('node:crypto');
