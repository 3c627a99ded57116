export * from './policy.js';
export * from './messages.js';
export * from './subjects.js';
export * from './validate.js';
export * from './events.js';
export * from './quarantine.js';
export * from './delivery.js';
