export * from './deadline.js';
export * from './object-store.js';
export * from './minio-store.js';
export * from './delete-batcher.js';
