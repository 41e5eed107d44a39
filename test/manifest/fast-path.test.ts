import {mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {dump} from 'js-yaml'
import {parseDocument, stringify} from 'yaml'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {compileManifest, manifestStructureSchema, validateProject, validateSource, type JsonSchema, type ValidationResult} from '../../src/manifest/index.js'
import {parseYaml} from '../../src/manifest/positions.js'
import {quickLoad} from '../../src/manifest/quick-yaml.js'
import {mutate, rng} from './mutate.js'

// `r1 validate` parses with js-yaml first and with yaml@2 only when it must (src/manifest/quick-yaml.ts).
// Both paths must give the same result, byte for byte: every fixture, the bench manifest, mutations, generated YAML.
const root = join(import.meta.dirname, '../fixtures/manifests')
const fixtures = ['valid', 'warnings', 'invalid'].flatMap((kind) => readdirSync(join(root, kind)).map((name) => ({kind, name, dir: join(root, kind, name)})))

/** The same result, key order included (it shows in `--json` and in the compiled configs), and the same compiled output. */
function expectSame(fast: ValidationResult, slow: ValidationResult): void {
  expect(fast).toEqual(slow)
  expect(JSON.stringify(fast)).toBe(JSON.stringify(slow))
  if (slow.manifest) expect(JSON.stringify(compileManifest(fast.manifest!))).toBe(JSON.stringify(compileManifest(slow.manifest)))
}

const text = (dir: string) => readFileSync(join(dir, 'config.yaml'), 'utf8').replace(/^\uFEFF/, '')

describe('every fixture gives the same result through js-yaml first as through yaml@2 only', () => {
  for (const {kind, name, dir} of fixtures) {
    it(`${kind}/${name}`, async () => {
      expectSame(await validateProject(dir), await validateProject(dir, {parser: 'yaml'}))
    })
  }

  it('answers valid manifests without yaml@2, and leaves documents with YAML it cannot vouch for to it', () => {
    const fast = ['minimal', 'sensor-watch', 'app-runner', 'multi-pipeline', 'mixed-case-and-anchors', 'bom-crlf', 'yaml-anchors-merge', 'yaml-quoted-keys', 'yaml-bool-words', 'yaml-number-forms']
    const yaml2 = ['yaml-merge-list', 'yaml-long-lines', 'yaml-document-markers', 'yaml-directive-1.1', 'yaml-explicit-tags', 'yaml-tabs-in-values']
    for (const name of fast) expect({name, fast: quickLoad(text(join(root, 'valid', name))) !== undefined}).toEqual({name, fast: true})
    for (const name of yaml2) expect({name, fast: quickLoad(text(join(root, 'valid', name))) !== undefined}).toEqual({name, fast: false})
  })
})

describe('the 100-pipeline bench manifest', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'r1-fast-path-'))
  })
  afterAll(() => {
    rmSync(dir, {recursive: true, force: true})
  })

  it('is valid through both paths, with the same manifest, and takes the fast path', async () => {
    // bench/ is plain JavaScript outside the type-checked tree; this is its generator, not a copy.
    const bench = (await import('../../bench/startup.js' as string)) as {manifestWithPipelines(count: number): string}
    const source = bench.manifestWithPipelines(100)
    writeFileSync(join(dir, 'config.yaml'), source)
    expect(quickLoad(source)).toBeDefined()
    const fast = await validateProject(dir)
    expectSame(fast, await validateProject(dir, {parser: 'yaml'}))
    expect(fast.valid).toBe(true)
    expect(compileManifest(fast.manifest!)).toHaveLength(100)
  })

  it('and one error in it gives the same positioned diagnostic through both', async () => {
    const bench = (await import('../../bench/startup.js' as string)) as {manifestWithPipelines(count: number): string}
    writeFileSync(join(dir, 'config.yaml'), bench.manifestWithPipelines(100).replace('restart_policy: on-failure }', 'restart_policy: sometimes }'))
    const fast = await validateProject(dir)
    expectSame(fast, await validateProject(dir, {parser: 'yaml'}))
    expect(fast.diagnostics.map((d) => [d.rule, d.line, d.col])).toEqual([['config-enum', 13, 54]])
  })
})

describe('mutated manifests give the same result through both paths', () => {
  const PIECES = [':', ': ', '- ', ' ', '  ', '\t', '{', '}', '[', ']', '"', "'", '&a ', '*a', '<<: *a\n', '#', ' #', '\n', '\r\n', 'x', '0', '012', '0o7', '0x1F', '1e3', '.inf', 'yes', 'null', '~', '|', '>-', '? ', ',', '!!str ', '! ', '%YAML 1.1\n', '---\n', '...\n', '\\', '"\\t"', '\u00e9', '\uFEFF', '\u2028', '[x]: 1\n', '  k: v\n', '&q{', '&q\n  &r ', 'k: &k b: c', '<<: *y\n', '&y {q: 1} ', '-\n', '- \n', '-  - ', ',#']
  let schema: JsonSchema
  beforeAll(async () => {
    schema = await manifestStructureSchema()
  })

  for (const {kind, name, dir} of fixtures.filter((f) => f.kind !== 'invalid' || f.name.startsWith('yaml-'))) {
    it(`${kind}/${name}: 120 mutations`, async () => {
      const file = join(dir, 'config.yaml')
      const original = readFileSync(file, 'utf8')
      const random = rng(name.length * 104729 + original.length)
      for (let i = 0; i < 120; i++) {
        const source = mutate(original, random, PIECES)
        const fast = await validateSource(source, file, schema)
        const slow = await validateSource(source, file, schema, {parser: 'yaml'})
        if (JSON.stringify(fast) !== JSON.stringify(slow)) expect({source, fast}).toEqual({source, fast: slow})
      }
    })
  }
})

describe('generated YAML: js-yaml answers only with the value yaml@2 gives', () => {
  const SCALARS = ['yes', 'no', 'on', 'off', 'Y', 'true', 'True', 'FALSE', 'null', 'Null', '~', '', ' ', '0', '-0', '012', '0o17', '0x1F', '0b11', '1_000', '1e3', '.5', '5.', '.inf', '.nan', '2024-01-01', '1:2', 'a: b', 'a #b', '#x', '- x', '&a', '*a', '!x', '%x', '"q"', "'q'", 'multi\nline', 'trail \n', '\ttab', 'é', '\u00a0', 'x'.repeat(90), 'a,b', '[x]', '{x}', '<<', '?', '? x', '---', '...']
  // A number's value only: JSON cannot tell -0, NaN or Infinity apart from others.
  const tag = (_key: string, value: unknown) => (typeof value === 'number' ? `number:${Object.is(value, -0) ? '-0' : String(value)}` : value)

  it('for 3000 random documents in the styles yaml@2 and js-yaml write', () => {
    const random = rng(2026)
    const pick = <T,>(list: readonly T[]): T => list[Math.floor(random() * list.length)]
    const value = (depth: number): unknown => {
      const k = random()
      if (depth > 3 || k < 0.45) {
        const s = random()
        if (s < 0.5) return pick(SCALARS)
        if (s < 0.7) return Math.floor((random() - 0.5) * 1e6) / pick([1, 10, 1000])
        if (s < 0.8) return random() < 0.5
        if (s < 0.85) return null
        return pick(SCALARS) + pick(SCALARS)
      }
      if (k < 0.7) return Array.from({length: Math.floor(random() * 4)}, () => value(depth + 1))
      const object: Record<string, unknown> = {}
      for (let i = Math.floor(random() * 5); i > 0; i--) object[pick([...SCALARS.filter((s) => s !== ''), 'key', 'KEY_1', 'pipe-1', 'constructor', '1', '1.5'])] = value(depth + 1)
      return object
    }
    let answered = 0
    for (let i = 0; i < 3000; i++) {
      const data = {root: value(0), other: value(1)}
      const source =
        random() < 0.6
          ? stringify(data, {indent: pick([2, 4]), lineWidth: pick([0, 40, 80]), minContentWidth: 0, collectionStyle: pick(['any', 'block', 'flow'] as const), defaultStringType: pick(['PLAIN', 'QUOTE_DOUBLE', 'QUOTE_SINGLE', 'BLOCK_LITERAL', 'BLOCK_FOLDED'] as const), indentSeq: random() < 0.5, doubleQuotedAsJSON: random() < 0.3})
          : dump(data, {indent: pick([2, 4]), flowLevel: pick([-1, 0, 1, 2]), lineWidth: pick([-1, 40, 80]), quotingType: pick(["'", '"'] as const), forceQuotes: random() < 0.2, condenseFlow: random() < 0.3})
      const quick = quickLoad(source)
      if (!quick) continue
      answered++
      const yaml2 = parseYaml(source)
      expect({source, errors: [...yaml2.syntaxErrors, ...yaml2.duplicateKeys]}).toEqual({source, errors: []})
      if (JSON.stringify(quick.data, tag) !== JSON.stringify(yaml2.data, tag)) expect({source, data: quick.data}).toEqual({source, data: yaml2.data})
    }
    // Most of them go through js-yaml, so this compares something.
    expect(answered).toBeGreaterThan(2000)
  })
})

describe('quickLoad', () => {
  it('reads YAML 1.2 core scalars as yaml@2 does', () => {
    const source = 'a: yes\nb: on\nc: 012\nd: 0o17\ne: 0x1F\nf: 0b101\ng: 1_000\nh: -0\ni: .inf\nj: -.Inf\nk: .NaN\nl: 2024-01-01\nm: ~\nn:\np: 1e3\nq: +5\nr: 0X1F\n'
    const quick = quickLoad(source)
    expect(quick).toBeDefined()
    expect(quick!.data).toEqual(parseYaml(source).data)
    expect(quick!.data).toEqual({a: 'yes', b: 'on', c: 12, d: 15, e: 31, f: '0b101', g: '1_000', h: -0, i: Infinity, j: -Infinity, k: NaN, l: '2024-01-01', m: null, n: null, p: 1000, q: 5, r: '0X1F'})
    expect(Object.is((quick!.data as {h: number}).h, -0)).toBe(true)
  })

  it('merges as yaml@2 does: keys already there win, later keys override', () => {
    const source = 'base: &b {x: 1, y: 2, z: 3}\nm: {y: 20, <<: *b, z: 30}\n'
    expect(quickLoad(source)!.data).toEqual(parseYaml(source).data)
    expect(Object.keys((quickLoad(source)!.data as {m: object}).m)).toEqual(Object.keys((parseYaml(source).data as {m: object}).m))
  })

  // Each of these is read differently by js-yaml, or rejected only by yaml@2, or simply not worth the risk.
  const unsure: Array<[string, string]> = [
    ['a YAML 1.1 directive (yes becomes true in yaml@2)', '%YAML 1.1\n---\na: yes\n'],
    ['a tab', 'a:\tb\n'],
    ['an explicit key', '? a\n: b\n'],
    ['a flow sequence as a key', '[a]: 1\n'],
    ['a flow map as a key', '{a: 1}: 2\n'],
    ['an alias as a key to a list', 'l: &l [a]\n*l : 1\n'],
    ['an alias as a key in a flow map', 'l: &l [a]\nm: {*l : 1}\n'],
    ['an alias to a string as a key', 's: &s a\n*s : 1\n'],
    ['an alias as a key without a value in a flow map', 'm: &m {a: 1}\nf: {b: 1, *m}\n'],
    ['an alias to a list as a key without a value', 'l: &l [a]\nf: {\n  *l }\n'],
    ['a null key ("" in yaml@2, "null" in js-yaml)', '~: 1\n'],
    ['a key written null', 'null: 1\n'],
    ['an explicit tag', 'a: !!str 1\n'],
    ['a tag js-yaml knows and yaml@2 core does not', 'a: !!binary aGk=\n'],
    ['a local tag', 'a: !thing x\n'],
    ['the non-specific tag', 'a: ! 12\n'],
    ['a second document', 'a: 1\n---\nb: 2\n'],
    ['a document end marker', 'a: 1\n...\n'],
    ['a comment glued to a flow map', 'a: {b: 1}#c\n'],
    ['a comment glued to a quoted string', 'a: "b"#c\n'],
    ['a comment glued to a comma', 'a: [b,#c\n d]\n'],
    ['a lone CR line break', 'a: 1\rb: 2\n'],
    ['a line separator', 'a: "x\u2028y"\n'],
    ['a control character', 'a: "x\u0007"\n'],
    ['a BOM past the start', 'a: \uFEFFx\n'],
    ['a line of 1000 characters', `a: ${'x'.repeat(1000)}\n`],
    ['more aliases than the budget', `s: &s x\nl: [${Array(7).fill('*s').join(', ')}]\n`],
    ['a map that merges itself', 'a: &a\n  x: 1\n  <<: *a\n'],
    ['a map that contains itself', 'a: &a\n  x: 1\n  self: *a\n'],
    ['an anchor followed by a compact mapping', 'a: &x b: c\n'],
    ['an anchor followed by a plain scalar with ": "', 'a: &x b c: d\n'],
    ['a merge of an alias to a list', 'l: &l [[]]\nm:\n  <<: *l\n'],
    ['an explicit merge tag', 'a: &a {x: 1}\nb:\n  !!merge <<: *a\n'],
    ['a plain << as a value (js-yaml tags it as a merge key)', 'a: <<\nb: 1\n'],
    ['an anchor glued to a flow map', 'a: &z{ b: 1 }\n'],
    ['two anchors on one node, across lines', 'a: &a\n  &b x\n'],
    ['an empty list entry followed by one at another indentation', 'a:\n    -\n  -\n'],
    ['a list at the top level', '  -\n-'],
    ['a merge of a list', 'a: &a {x: 1}\nb: &b {y: 1}\nc: {<<: [*a, *b]}\n'],
    ['an inline merge', 'c: {<<: {x: 1}}\n'],
    ['a duplicate key', 'a: 1\na: 2\n'],
    ['a scalar document', 'just text\n'],
    ['an empty document', ''],
  ]
  for (const [what, source] of unsure) {
    it(`leaves ${what} to yaml@2`, () => {
      expect(quickLoad(source)).toBeUndefined()
    })
  }

  it('keeps the alias budget far from yaml@2 refusing a document (maxAliasCount 1000)', () => {
    // Random alias/merge structures with 6 aliases (the budget): none needs more than a fraction of 1000 expansions.
    const random = rng(6)
    let worst = 0
    for (let n = 0; n < 400; n++) {
      const lines = ['a0: &a0 {v: 1}']
      const kinds: Array<'map' | 'seq'> = ['map']
      for (let aliases = 0, i = 1; aliases < 6; i++) {
        const kind = random() < 0.5 ? 'map' : 'seq'
        const refs = Array.from({length: Math.min(6 - aliases, 1 + Math.floor(random() * 3))}, () => Math.floor(random() * i))
        aliases += refs.length
        const maps = refs.filter((r) => kinds[r] === 'map')
        if (kind === 'map' && maps.length === refs.length) lines.push(`a${i}: &a${i}`, `  own${i}: x`, `  <<: [${refs.map((r) => `*a${r}`).join(', ')}]`)
        else lines.push(`a${i}: &a${i} [${refs.map((r) => `*a${r}`).join(', ')}]`)
        kinds.push(kind === 'map' && maps.length === refs.length ? 'map' : 'seq')
      }
      const doc = parseDocument(lines.join('\n') + '\n', {merge: true})
      expect(doc.errors).toEqual([])
      // The smallest maxAliasCount that yaml@2 accepts for this document.
      let low = 0
      let high = 1000
      while (low < high) {
        const mid = Math.floor((low + high) / 2)
        try {
          doc.toJS({maxAliasCount: mid})
          high = mid
        } catch {
          low = mid + 1
        }
      }
      worst = Math.max(worst, low)
    }
    expect(worst).toBeGreaterThan(6)
    expect(worst).toBeLessThan(250)
  })
})
