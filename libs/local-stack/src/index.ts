export * from './daemon.js';
export * from './nats.js';
export * from './s3.js';
export * from './dovecot.js';
export * from './service.js';
export * from './supervisor.js';
export * from './stack.js';
export * from './stall-proxy.js';
