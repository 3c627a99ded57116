export * from './connect.js';
export * from './topology.js';
export * from './policy-store.js';
export * from './policy-watcher.js';
export * from './work-loop.js';
export * from './activity.js';
export * from './delivery-records.js';
export * from './decode-or-drop.js';
