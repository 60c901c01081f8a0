/** The local SQLite index of known-present paths and per-cache state. */
export * from './errors.js';
export { LocalIndex, type LocalIndexOptions, type PresentPath } from './local-index.js';
export { SCHEMA_VERSION } from './migrations.js';
