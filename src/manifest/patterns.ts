/** Formats and field types of config.yaml, without zod: the runtime checks import these cheaply. */

export const PROJECT_NAME_PATTERN = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/
// semver 2.0.0 (the official regex without named groups)
export const SEMVER_PATTERN =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/
/** Signatures (UPPER_SNAKE) and pipeline names / instance ids / target names (at most 200 characters): what a node accepts. */
export {SIGNATURE_PATTERN, NAME_PATTERN as ID_PATTERN} from '../protocol/limits.js'
/** Instance config keys as written (any case); they are compared and compiled in UPPERCASE. */
export const CONFIG_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/
export const TARGET_URL_PATTERN = /^wss?:\/\/[^\s/?#]+(?:[/?#]\S*)?$/
/** An MQTT broker: mqtt://, mqtts://, ws:// or wss://, a host, no user or password in it. */
export const BROKER_URL_PATTERN = /^(?:mqtts?|wss?):\/\/[^\s/?#@]+(?:[/?#]\S*)?$/
export {TOPIC_ROOT_PATTERN} from '../protocol/topics.js'
export const ADDRESS_PATTERN = /^0xai_[A-Za-z0-9_-]{44}$/

export const FIELD_TYPES = ['number', 'integer', 'string', 'boolean', 'object', 'array'] as const
export type FieldType = (typeof FIELD_TYPES)[number]
