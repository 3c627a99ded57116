export * from './eicar.js';
export * from './compose.js';
export * from './python-smtp.js';
export * from './wait.js';
export * from './python-pop3.js';
export * from './zip.js';
export * from './corpus.js';
