/**
 * Built-in modules that the common path never needs, loaded on first use: a warm --dry-run
 * spawns nothing and draws no random numbers, and loading node:child_process or node:crypto
 * up front costs it measurable start-up time. (process.getBuiltinModule: Node ≥ 20.16.)
 */
export const childProcess = (): typeof import('node:child_process') => process.getBuiltinModule('node:child_process');
export const crypto = (): typeof import('node:crypto') => process.getBuiltinModule('node:crypto');
