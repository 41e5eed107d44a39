import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {RULES, compileManifest, manifestStructureSchema, validateSource, type JsonSchema} from '../../src/manifest/index.js'
import {mutate, rng} from './mutate.js'

// Bad input gets diagnostics, never an exception: thousands of seeded mutations of the valid fixtures.
const root = join(import.meta.dirname, '../fixtures/manifests/valid')
const PIECES = [':', ': ', '-', ' ', '  ', '\t', '{', '}', '[', ']', '"', "'", '&a', '*a', '<<: *a\n', '#', '\n', 'x', 'NOPE', '0', '-1', 'null', '~', '|', '>', '?', ',', '!!str ', '%', '@', '`', '\u00e9', '\uFEFF']

describe('mutated manifests', () => {
  let schema: JsonSchema
  beforeAll(async () => {
    schema = await manifestStructureSchema()
  })

  for (const name of readdirSync(root).sort()) {
    it(`${name}: 300 mutations give well-formed diagnostics and never throw`, async () => {
      const file = join(root, name, 'config.yaml')
      const original = readFileSync(file, 'utf8')
      const random = rng(name.length * 7919 + original.length)
      const rules = new Set<string>()
      for (let i = 0; i < 300; i++) {
        const source = mutate(original, random, PIECES)
        const result = await validateSource(source, file, schema)
        const lineCount = source.split('\n').length
        for (const d of result.diagnostics) {
          rules.add(d.rule)
          expect(d.rule in RULES).toBe(true)
          expect(d.line).toBeGreaterThanOrEqual(1)
          expect(d.line).toBeLessThanOrEqual(lineCount + 1)
          expect(d.col).toBeGreaterThanOrEqual(1)
          expect(d.message).not.toBe('')
        }
        expect(result.valid).toBe(!result.diagnostics.some((d) => d.severity === 'error'))
        if (result.valid) {
          expect(result.manifest).toBeDefined()
          expect(() => compileManifest(result.manifest!)).not.toThrow()
        } else expect(result.manifest).toBeUndefined()
      }
      // The mutations reach past the YAML layer into the schema and semantic checks.
      expect(rules.size).toBeGreaterThanOrEqual(4)
    })
  }
})
