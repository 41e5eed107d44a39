/**
 * A small JSON Schema (draft-07) validator for the keywords r1's generated config.schema.json uses.
 * It throws on any keyword it does not implement, so a schema change can never be silently
 * half-checked by the agreement test.
 */

type Schema = boolean | Record<string, unknown>

const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', 'default', 'examples', '$comment', 'definitions', '$defs'])
const IMPLEMENTED = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'enum',
  'const',
  'items',
  'minItems',
  'maxItems',
  'anyOf',
  'oneOf',
  'allOf',
  'not',
  '$ref',
])

export interface SchemaError {
  path: string
  keyword: string
}

export function validateJsonSchema(root: Schema, value: unknown): SchemaError[] {
  const errors: SchemaError[] = []
  check(root, value, '', root, errors)
  return errors
}

function typeOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

function hasType(type: string, value: unknown): boolean {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value)
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
    case 'object':
      return typeOf(value) === 'object'
    default:
      return typeOf(value) === type
  }
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

function resolveRef(root: Schema, ref: string): Schema {
  if (!ref.startsWith('#')) throw new Error(`external $ref not supported: ${ref}`)
  let node: unknown = root
  for (const part of ref.slice(1).split('/').filter(Boolean)) node = (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')]
  return node as Schema
}

function check(schema: Schema, value: unknown, path: string, root: Schema, errors: SchemaError[]): void {
  if (schema === true) return
  if (schema === false) {
    errors.push({path, keyword: 'false'})
    return
  }
  for (const keyword of Object.keys(schema)) {
    if (!ANNOTATIONS.has(keyword) && !IMPLEMENTED.has(keyword)) throw new Error(`keyword "${keyword}" at ${path || '/'} is not implemented by the test validator`)
  }
  const fail = (keyword: string) => errors.push({path, keyword})
  const s = schema as Record<string, any>

  if (s.$ref !== undefined) check(resolveRef(root, s.$ref), value, path, root, errors)
  if (s.type !== undefined) {
    const types: string[] = Array.isArray(s.type) ? s.type : [s.type]
    if (!types.some((t) => hasType(t, value))) {
      fail('type')
      return
    }
  }
  if (s.enum !== undefined && !s.enum.some((e: unknown) => equal(e, value))) fail('enum')
  if (s.const !== undefined && !equal(s.const, value)) fail('const')

  if (typeof value === 'string') {
    const length = [...value].length
    if (s.minLength !== undefined && length < s.minLength) fail('minLength')
    if (s.maxLength !== undefined && length > s.maxLength) fail('maxLength')
    if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(value)) fail('pattern')
  }
  if (typeof value === 'number') {
    if (s.minimum !== undefined && value < s.minimum) fail('minimum')
    if (s.maximum !== undefined && value > s.maximum) fail('maximum')
    if (s.exclusiveMinimum !== undefined && value <= s.exclusiveMinimum) fail('exclusiveMinimum')
    if (s.exclusiveMaximum !== undefined && value >= s.exclusiveMaximum) fail('exclusiveMaximum')
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems) fail('minItems')
    if (s.maxItems !== undefined && value.length > s.maxItems) fail('maxItems')
    if (s.items !== undefined) {
      if (Array.isArray(s.items)) throw new Error('tuple items not supported')
      value.forEach((item, i) => check(s.items, item, `${path}/${i}`, root, errors))
    }
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>
    for (const key of s.required ?? []) if (!(key in object)) errors.push({path: `${path}/${key}`, keyword: 'required'})
    for (const [key, item] of Object.entries(object)) {
      if (s.propertyNames !== undefined) check(s.propertyNames, key, `${path}/${key}`, root, errors)
      if (s.properties && key in s.properties) check(s.properties[key], item, `${path}/${key}`, root, errors)
      else if (s.additionalProperties !== undefined) check(s.additionalProperties, item, `${path}/${key}`, root, errors)
    }
  }
  if (s.allOf) for (const sub of s.allOf) check(sub, value, path, root, errors)
  if (s.anyOf && !s.anyOf.some((sub: Schema) => validateAt(sub, value, root))) fail('anyOf')
  if (s.oneOf && s.oneOf.filter((sub: Schema) => validateAt(sub, value, root)).length !== 1) fail('oneOf')
  if (s.not && validateAt(s.not, value, root)) fail('not')
}

function validateAt(schema: Schema, value: unknown, root: Schema): boolean {
  const errors: SchemaError[] = []
  check(schema, value, '', root, errors)
  return errors.length === 0
}
