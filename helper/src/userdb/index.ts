export * from './errors.js';
export * from './files.js';
export * from './getent.js';
export * from './nsswitch.js';
export * from './resolve.js';
export * from './types.js';
