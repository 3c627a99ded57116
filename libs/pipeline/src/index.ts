export * from './ref.js';
export * from './tee.js';
export * from './hash-counter.js';
export * from './errors.js';
export * from './message-scanner.js';
export * from './bus-message-scanner.js';
export * from './small-copy.js';
