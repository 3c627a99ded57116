export * from './dsn.js';
export * from './backoff.js';
export * from './routes.js';
export * from './handle-delivery.js';
export * from './hand-off.js';
export * from './rescan-delay.js';
