/**
 * The config.yaml manifest: validation with positions, compilation to Ratio1 pipeline configs.
 * This entry does not load zod; the zod schemas are in ./schema.js, the JSON Schema in ./json-schema.js.
 */
export {FIELD_TYPES} from './patterns.js'
export type {Manifest, ConfigField, Plugin, Pipeline, Instance, Target, Environment, Tags, FieldType} from './schema.js'
export {environmentTargets, hasTags, knownTags, withEnvironment} from './environments.js'
export type {ConfigOverride} from './environments.js'
export {RULES, countBySeverity, didYouMean, levenshtein} from './diagnostics.js'
export type {Diagnostic, RuleId, Severity} from './diagnostics.js'
export {MANIFEST_FILE, ENTRY_EXTENSIONS, validateProject, validateSource, loadManifest, resolveManifestPath} from './validate.js'
export type {ValidationResult, ValidateOptions} from './validate.js'
export {compileManifest} from './compile.js'
export type {CompileOptions} from './compile.js'
export {
  BASE_FIELDS,
  BUILTIN_PLUGINS,
  BUILTIN_SIGNATURES,
  RESERVED_KEYS,
  applyDefaults,
  checkInstanceConfig,
  checkValue,
  decodeCode,
  openPluginSpec,
  pluginSchemas,
  pluginSpec,
} from './fields.js'
export type {ConfigProblem, FieldSpec, PluginSpec} from './fields.js'
export {checkNodeAddress, addressPublicKey} from './address.js'
export {formatDiagnostics, formatSummary, validationReport} from './format.js'
export type {ValidationReport} from './format.js'
export {generateConfigTypes, configTypeName, typedSignatures} from './types-gen.js'
export {manifestStructureSchema, checkStructure} from './structure.js'
export type {JsonSchema, StructureIssue} from './structure.js'
export {writeConfigTypes, DEFAULT_TYPES_FILE} from './types-gen.js'
