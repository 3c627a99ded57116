export * from './self-signed.js';
export * from './tls-material.js';
export * from './splice.js';
export * from './upstream-connect.js';
