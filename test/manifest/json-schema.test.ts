import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {parseDocument} from 'yaml'
import {describe, expect, it} from 'vitest'
import {checkStructure} from '../../src/manifest/index.js'
import {manifestJsonSchema} from '../../src/manifest/json-schema.js'
import {ManifestSchema} from '../../src/manifest/schema.js'

// zod is the single source; the JSON Schema generated from it is what editors see and what the
// run-time structure check (src/manifest/structure.ts) validates against. They must agree.
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

/** Same verdict; when valid, the same output (defaults filled in); when invalid, issues at the same paths. */
function expectAgreement(schema: ReturnType<typeof manifestJsonSchema>, data: unknown): boolean {
  const zod = ManifestSchema.safeParse(data)
  const json = checkStructure(schema, data)
  expect({valid: json.issues.length === 0}).toEqual({valid: zod.success})
  if (zod.success) expect(json.value).toEqual(zod.data)
  else {
    const paths = (issues: Array<{path: PropertyKey[]; code: string}>) => issues.map((i) => `${i.code}:${i.path.map(String).join('.')}`).sort()
    expect(paths(json.issues)).toEqual(paths(zod.error.issues))
  }
  return zod.success
}

describe('the JSON Schema for editors agrees with the zod schema', () => {
  const schema = manifestJsonSchema()

  it('is generated from zod with the structure editors need', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#')
    expect(schema.additionalProperties).toBe(false)
    expect(schema.required).toEqual(['name', 'version'])
    expect(Object.keys(schema.properties as object)).toEqual(['name', 'version', 'description', 'plugins', 'pipelines', 'brokers', 'targets', 'environments'])
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
      if (fixture.name === 'prototype-names') {
        // The one known difference: zod silently drops `__proto__` keys; r1 keeps and reports them.
        expect(ManifestSchema.safeParse(loaded.data).success).toBe(true)
        const issues = checkStructure(schema, loaded.data).issues
        expect(issues.map((i) => i.path.join('.'))).toEqual(['pipelines.apps.instances.__proto__'])
        return
      }
      if (expectAgreement(schema, loaded.data)) acceptedByBoth++
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
      {name: 'a', version: '1.0.0', plugins: {P: {entry: 'p.ts', config: {K: {type: 3}}}}},
      {name: 'a', version: '1.0.0', plugins: {bad: {entry: 3}, P: {entry: 'p.ts', allow_unknown_config: true, config: {'bad-key': {type: 'string'}}}}},
      {name: 'a', version: '1.0.0', pipelines: {p: {instances: {i: {plugin: ''}}}}},
      {name: 'a', version: '1.0.0', pipelines: {p: {type: ''}}},
      {name: 'a', version: '1.0.0', pipelines: {p: {instances: {i: {plugin: 'X', config: {a: {deep: [1]}, B: null}}}}}},
      {name: 'a', version: '1.0.0', targets: {t: {url: 'wss://h', address: '0xai_' + 'A'.repeat(44)}}},
      {name: 'a', version: '1.0.0', targets: {t: {url: 'wss://h', address: '0xai_' + 'A'.repeat(43)}}},
      {name: 'a', version: '1.0.0', targets: {t: {url: 'ws://', address: 7}}},
      {name: 'a', version: Number.POSITIVE_INFINITY, description: null},
    ]
    for (const value of cases) expectAgreement(schema, value)
  })
})
