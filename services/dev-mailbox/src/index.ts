export * from './dev-mailbox.js';
export * from './maildir.js';
