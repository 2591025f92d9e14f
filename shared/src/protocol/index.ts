export * from './codes.js';
export * from './decode.js';
export * from './error.js';
export * from './frame.js';
export * from './limits.js';
export * from './messages.js';
export * from './names.js';
export * from './validate.js';
