export * from './settings.js';
export * from './load.js';
