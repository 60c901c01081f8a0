export { loadConfig, parseConfig, checkConfig } from './load.js';
export type { ParseOptions, LoadOptions, ConfigResult, ConfigCheck } from './load.js';
export type { LoftConfig, ConfigOverrides, CompressionName, LogFormat } from './types.js';
export {
  ConfigError,
  ConfigSyntaxError,
  ConfigFileMissingError,
  ConfigReadError,
  SigningKeyError,
  formatIssue,
} from './errors.js';
export type { ConfigIssue, ConfigWarning } from './errors.js';
export {
  ExtraHeaders,
  mergeExtraHeaders,
  checkHeaderName,
  checkHeaderValue,
  headerNameFromEnv,
  EXTRA_HEADER_ENV_PREFIX,
} from './extra-headers.js';
export type { Env, HeaderIssue, HeaderSource } from './extra-headers.js';
export { parseSchedule, tryParseSchedule, nextRun, formatSchedule } from './schedule.js';
export type { Schedule } from './schedule.js';
export { readSigningKey, resolveSigningKeyText, SigningKeyText } from './signing-key.js';
export { schema } from './schema.js';
export { daemonTransportOf } from './daemon-transport.js';
