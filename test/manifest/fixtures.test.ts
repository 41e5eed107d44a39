import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {RULES, compileManifest, validateProject} from '../../src/manifest/index.js'

const root = join(import.meta.dirname, '../fixtures/manifests')
const list = (kind: string) => readdirSync(join(root, kind)).sort()

interface Expected {
  rule: string
  line: number
  col: number
  suggestion?: string
}

const readExpect = (dir: string): Expected[] => (JSON.parse(readFileSync(join(dir, 'expect.json'), 'utf8')) as {diagnostics: Expected[]}).diagnostics

describe('invalid manifests: every diagnostic, exact rule, line and column', () => {
  const names = list('invalid')
  it('has at least 40 broken fixtures', () => {
    expect(names.length).toBeGreaterThanOrEqual(40)
  })

  for (const name of names) {
    it(name, async () => {
      const dir = join(root, 'invalid', name)
      const expected = readExpect(dir)
      const result = await validateProject(dir)
      expect(result.valid).toBe(false)
      expect(result.manifest).toBeUndefined()
      const got = result.diagnostics.map((d) => ({rule: d.rule, line: d.line, col: d.col}))
      expect(got).toEqual(expected.map(({rule, line, col}) => ({rule, line, col})))
      for (const [i, e] of expected.entries()) {
        const d = result.diagnostics[i]
        expect(d.file).toBe(join(dir, 'config.yaml'))
        expect(d.severity).toBe(RULES[d.rule].severity)
        expect(d.message.length).toBeGreaterThan(10)
        if (e.suggestion !== undefined) expect(d.suggestion).toBe(e.suggestion)
      }
    })
  }

  it('covers every error rule', () => {
    const seen = new Set(names.flatMap((name) => readExpect(join(root, 'invalid', name)).map((e) => e.rule)))
    const errorRules = Object.entries(RULES)
      .filter(([, r]) => r.severity === 'error')
      .map(([id]) => id)
    expect(errorRules.filter((rule) => !seen.has(rule))).toEqual([])
  })
})

it('documents every rule in src/manifest/README.md', () => {
  const readme = readFileSync(join(import.meta.dirname, '../../src/manifest/README.md'), 'utf8')
  for (const [id, rule] of Object.entries(RULES)) expect(readme).toContain(`| \`${id}\` | ${rule.severity} | ${rule.summary} |`)
})

describe('manifests with warnings only: valid, but --strict fails', () => {
  for (const name of list('warnings')) {
    it(name, async () => {
      const dir = join(root, 'warnings', name)
      const result = await validateProject(dir)
      expect(result.valid).toBe(true)
      expect(result.manifest).toBeDefined()
      expect(result.diagnostics.every((d) => d.severity === 'warning')).toBe(true)
      const expected = readExpect(dir)
      expect(result.diagnostics.map((d) => ({rule: d.rule, line: d.line, col: d.col}))).toEqual(expected.map(({rule, line, col}) => ({rule, line, col})))
      for (const [i, e] of expected.entries()) if (e.suggestion !== undefined) expect(result.diagnostics[i].suggestion).toBe(e.suggestion)
    })
  }
})

describe('valid manifests round-trip through the compiler', () => {
  for (const name of list('valid')) {
    it(name, async () => {
      const dir = join(root, 'valid', name)
      const result = await validateProject(dir)
      expect(result.diagnostics).toEqual([])
      expect(result.valid).toBe(true)
      const compiled = compileManifest(result.manifest!)
      const expectedFile = join(dir, 'compiled.json')
      expect(existsSync(expectedFile)).toBe(true)
      expect(compiled).toEqual(JSON.parse(readFileSync(expectedFile, 'utf8')))
    })
  }
})
