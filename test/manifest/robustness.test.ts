import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {RULES, compileManifest, manifestStructureSchema, validateSource, type JsonSchema} from '../../src/manifest/index.js'

// Bad input gets diagnostics, never an exception: thousands of seeded mutations of the valid fixtures.
const root = join(import.meta.dirname, '../fixtures/manifests/valid')
const PIECES = [':', ': ', '-', ' ', '  ', '\t', '{', '}', '[', ']', '"', "'", '&a', '*a', '<<: *a\n', '#', '\n', 'x', 'NOPE', '0', '-1', 'null', '~', '|', '>', '?', ',', '!!str ', '%', '@', '`', '\u00e9', '\uFEFF']

function rng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function mutate(source: string, random: () => number): string {
  let text = source
  const edits = 1 + Math.floor(random() * 3)
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * (text.length + 1))
    const kind = random()
    if (kind < 0.35) text = text.slice(0, at) + PIECES[Math.floor(random() * PIECES.length)] + text.slice(at)
    else if (kind < 0.6) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 8))
    else {
      const lines = text.split('\n')
      const i = Math.floor(random() * lines.length)
      const j = Math.floor(random() * lines.length)
      if (kind < 0.8) lines.splice(j, 0, lines[i])
      else [lines[i], lines[j]] = [lines[j], lines[i]]
      text = lines.join('\n')
    }
  }
  return text
}

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
        const source = mutate(original, random)
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
