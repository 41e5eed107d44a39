import {z} from 'zod'
import {ManifestSchema} from './schema.js'

/** The JSON Schema of config.yaml for editors (yaml-language-server), generated from the zod schema. */
export function manifestJsonSchema(): Record<string, unknown> {
  // io 'input': keys with defaults are optional, as a user writes them; draft-07 is what editors support best.
  const schema = z.toJSONSchema(ManifestSchema, {io: 'input', target: 'draft-7'}) as Record<string, unknown>
  return {...schema, title: 'r1 project manifest (config.yaml)'}
}
