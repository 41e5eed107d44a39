import {z} from 'zod'
import {TagsSchema} from '../protocol/tags.js'
import {ADDRESS_PATTERN, BROKER_URL_PATTERN, CONFIG_KEY_PATTERN, FIELD_TYPES, ID_PATTERN, PROJECT_NAME_PATTERN, SEMVER_PATTERN, SIGNATURE_PATTERN, TARGET_URL_PATTERN, TOPIC_ROOT_PATTERN} from './patterns.js'

/**
 * The config.yaml schema (ARCHITECTURE.md §2): the single source of the `Manifest` type and of the JSON
 * Schema (write-schema.ts) that editors use and that structure.ts checks at run time without
 * loading zod. Structural only: checks that need the whole manifest live in semantics.ts.
 */

export {TagsSchema}
export {PROJECT_NAME_PATTERN, SEMVER_PATTERN, SIGNATURE_PATTERN, ID_PATTERN, CONFIG_KEY_PATTERN, TARGET_URL_PATTERN, ADDRESS_PATTERN, FIELD_TYPES} from './patterns.js'
export type {FieldType} from './patterns.js'

const EnumValue = z.union([z.string(), z.number(), z.boolean()])

/** One key of a plugin's instance config schema (cf. Ratio1 VALIDATION_RULES). */
export const ConfigFieldSchema = z
  .strictObject({
    type: z.enum(FIELD_TYPES).describe('Type of the value'),
    default: z.unknown().optional().describe('Value used when an instance does not set this key'),
    min: z.number().optional().describe('Lower bound: the value for number/integer, the length for string/array'),
    max: z.number().optional().describe('Upper bound: the value for number/integer, the length for string/array'),
    enum: z.array(EnumValue).min(1).optional().describe('Allowed values'),
    required: z.boolean().optional().describe('Every instance must set this key (a default also satisfies it)'),
    description: z.string().optional(),
  })
  .describe('Schema of one instance config key')
export type ConfigField = z.infer<typeof ConfigFieldSchema>

export const PluginSchema = z
  .strictObject({
    entry: z
      .string()
      .min(1)
      .optional()
      .describe('Module whose default export is definePlugin(...): .ts, .js, .mjs or .mts, relative to config.yaml (required but for a built-in listed only to ship files)'),
    description: z.string().optional(),
    files: z
      .array(z.string().min(1))
      .optional()
      .describe('Globs (relative to config.yaml; *, ** and ?) of the files that travel with the plugin: each instance runs in its own work dir holding them'),
    setup: z
      .string()
      .min(1)
      .optional()
      .describe('Shell line run once per version of the files, in their folder, before instances start, e.g. "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"'),
    config: z
      .record(z.string().regex(CONFIG_KEY_PATTERN), ConfigFieldSchema)
      .default({})
      .describe('Instance config schema; keys are compared in UPPERCASE'),
    allow_unknown_config: z
      .boolean()
      .default(false)
      .describe('Accept instance config keys that the schema does not declare (they are passed through unchecked)'),
  })
  .describe('A signature this project provides')
export type Plugin = z.infer<typeof PluginSchema>

export const InstanceSchema = z
  .strictObject({
    plugin: z.string().min(1).describe("SIGNATURE: one of this project's plugins or a built-in (CUSTOM_EXEC_01, PROCESS_APP_RUNNER)"),
    config: z
      .record(z.string().regex(CONFIG_KEY_PATTERN), z.unknown())
      .default({})
      .describe('Instance config; keys are normalized to UPPERCASE'),
  })
  .describe('One plugin instance; its key is the INSTANCE_ID')
export type Instance = z.infer<typeof InstanceSchema>

export const PipelineSchema = z
  .strictObject({
    type: z.string().min(1).default('Void').describe('Data source TYPE (Void = none)'),
    instances: z.record(z.string().regex(ID_PATTERN), InstanceSchema).default({}).describe('INSTANCE_ID → instance'),
  })
  .describe('A pipeline; its key is the pipeline NAME')
export type Pipeline = z.infer<typeof PipelineSchema>

export {type Tags} from '../protocol/tags.js'

export const TargetSchema = z
  .strictObject({
    url: z.string().regex(TARGET_URL_PATTERN).optional().describe('ws:// or wss:// URL of the node (or `broker`)'),
    broker: z.string().regex(ID_PATTERN).optional().describe('Name of the broker (under `brokers`) the node is reached through, instead of `url`'),
    address: z.string().regex(ADDRESS_PATTERN).describe('The node address: 0xai_ + 44 URL-safe base64 characters'),
    ca: z.string().min(1).optional().describe("PEM file (relative to config.yaml) of the CA or self-signed certificate to trust for this wss:// node"),
    tags: TagsSchema.optional().describe('Labels of this node, selected by --tag name=value and by environments'),
  })
  .describe('A remote node for r1 deploy: its url, or the broker it is on')

export const BrokerSchema = z
  .strictObject({
    url: z.string().regex(BROKER_URL_PATTERN).describe('mqtt://, mqtts://, ws:// or wss:// URL of the MQTT broker (no user or password in it)'),
    user: z.string().min(1).optional().describe('Broker user name'),
    password_file: z.string().min(1).optional().describe('File (relative to config.yaml) whose first line is the broker password'),
    password_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional().describe('Environment variable holding the broker password (a CI secret); instead of password_file'),
    ca: z.string().min(1).optional().describe('PEM file (relative to config.yaml) of the CA to trust for an mqtts:// or wss:// broker'),
    root: z.string().regex(TOPIC_ROOT_PATTERN).optional().describe('Topic root (default naeural)'),
  })
  .describe('An MQTT broker that nodes and the CLI meet on')
export type Broker = z.infer<typeof BrokerSchema>
export type Target = z.infer<typeof TargetSchema>

/** A named group of targets (`staging`, `production`) with instance config values that differ there. */
export const EnvironmentSchema = z
  .strictObject({
    description: z.string().optional(),
    targets: z.array(z.string().regex(ID_PATTERN)).optional().describe('Names of its targets (under `targets:`)'),
    tags: TagsSchema.optional().describe('Its targets are also every target carrying all these tags'),
    config: z
      .record(z.string().regex(ID_PATTERN), z.record(z.string().regex(ID_PATTERN), z.record(z.string().regex(CONFIG_KEY_PATTERN), z.unknown())))
      .default({})
      .describe('Instance config overrides: pipeline NAME → INSTANCE_ID → KEY → value, checked like instance config'),
  })
  .describe('An environment: selected with --env NAME')
export type Environment = z.infer<typeof EnvironmentSchema>

export const ManifestSchema = z
  .strictObject({
    name: z.string().regex(PROJECT_NAME_PATTERN).describe('kebab-case project name'),
    version: z.string().regex(SEMVER_PATTERN).describe('semver version of the project'),
    description: z.string().optional(),
    plugins: z.record(z.string().regex(SIGNATURE_PATTERN), PluginSchema).default({}).describe('SIGNATURE (UPPER_SNAKE) → plugin'),
    pipelines: z.record(z.string().regex(ID_PATTERN), PipelineSchema).default({}).describe('pipeline NAME → pipeline'),
    brokers: z.record(z.string().regex(ID_PATTERN), BrokerSchema).default({}).describe('broker name → MQTT broker'),
    targets: z.record(z.string().regex(ID_PATTERN), TargetSchema).default({}).describe('target name → node'),
    environments: z.record(z.string().regex(ID_PATTERN), EnvironmentSchema).default({}).describe('environment name → its targets and config overrides'),
  })
  .describe('r1 project manifest (config.yaml)')

/** A manifest after parsing: defaults applied, instance config keys still as written. */
export type Manifest = z.output<typeof ManifestSchema>
