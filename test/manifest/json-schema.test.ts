import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {parseDocument} from 'yaml'
import {describe, expect, it} from 'vitest'
import {ManifestSchema, manifestJsonSchema} from '../../src/manifest/index.js'
import {validateJsonSchema} from './json-schema-subset.js'

const root = join(import.meta.dirname, '../fixtures/manifests')
const fixtures = ['valid', 'warnings', 'invalid'].flatMap((kind) => readdirSync(join(root, kind)).map((name) => ({kind, name, file: join(root, kind, name, 'config.yaml')})))

/** The fixture as the data both schemas see, or undefined when it is not YAML (syntax errors). */
function load(file: string): {data: unknown} | undefined {
  const doc = parseDocument(readFileSync(file, 'utf8').replace(/^\uFEFF/, ''), {merge: true, uniqueKeys: false})
  if (doc.errors.length > 0) return undefined
  try {
    return {data: doc.toJS({maxAliasCount: 1000})}
  } catch {
    return undefined // alias bomb
  }
}

describe('the JSON Schema for editors agrees with the zod schema', () => {
  const schema = manifestJsonSchema()

  it('is generated from zod with the structure editors need', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#')
    expect(schema.additionalProperties).toBe(false)
    expect(schema.required).toEqual(['name', 'version'])
    expect(Object.keys(schema.properties as object)).toEqual(['name', 'version', 'description', 'plugins', 'pipelines', 'targets'])
  })

  let rejectedByBoth = 0
  let acceptedByBoth = 0
  for (const fixture of fixtures) {
    it(`${fixture.kind}/${fixture.name}`, () => {
      const loaded = load(fixture.file)
      if (!loaded) {
        // Not YAML at all: neither schema is asked. Only the yaml-* fixtures may be here.
        expect(fixture.name).toMatch(/^yaml-/)
        return
      }
      const zodOk = ManifestSchema.safeParse(loaded.data).success
      const jsonErrors = validateJsonSchema(schema, loaded.data)
      expect({zodOk, jsonOk: jsonErrors.length === 0}).toEqual({zodOk, jsonOk: zodOk})
      if (zodOk) acceptedByBoth++
      else rejectedByBoth++
    })
  }

  it('saw both outcomes across the fixtures', () => {
    // Schema-level fixtures (unknown keys, types, formats) are rejected by both; semantic ones pass both.
    expect(rejectedByBoth).toBeGreaterThanOrEqual(30)
    expect(acceptedByBoth).toBeGreaterThanOrEqual(30)
  })

  it('agrees on values no fixture has', () => {
    const cases: unknown[] = [
      null,
      [],
      'name: x',
      {name: 'a', version: '1.0.0'},
      {name: 'a', version: '1.0.0', plugins: null},
      {name: 'a', version: '1.0.0', plugins: {P: {entry: 'p.ts', config: {K: {type: 'number', enum: []}}}}},
      {name: 'a', version: '1.0.0', plugins: {P: {entry: 'p.ts', config: {K: {type: 'number', enum: [1, 'x', true]}}}}},
      {name: 'a', version: '1.0.0', plugins: {P: {entry: 'p.ts', config: {K: {type: 'number', enum: [null]}}}}},
      {name: 'a', version: '1.0.0', pipelines: {p: {instances: {i: {plugin: ''}}}}},
      {name: 'a', version: '1.0.0', pipelines: {p: {type: ''}}},
      {name: 'a', version: '1.0.0', targets: {t: {url: 'wss://h', address: '0xai_' + 'A'.repeat(44)}}},
      {name: 'a', version: '1.0.0', targets: {t: {url: 'wss://h', address: '0xai_' + 'A'.repeat(43)}}},
    ]
    for (const value of cases) {
      const zodOk = ManifestSchema.safeParse(value).success
      expect({value, jsonOk: validateJsonSchema(schema, value).length === 0}).toEqual({value, jsonOk: zodOk})
    }
  })
})
