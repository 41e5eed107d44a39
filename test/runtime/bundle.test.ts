import {createHash} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {BundleStore, bundleEntry} from '../../src/runtime/index.js'
import {FIXTURES} from './helpers.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'r1-bundle-test-'))
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

describe('bundleEntry', () => {
  it('bundles a TypeScript entry and the SDK into one ES module named by its sha256', async () => {
    const bundle = await bundleEntry('src/counter.ts', {projectDir: join(FIXTURES, 'basic')})
    expect(bundle.hash).toBe(createHash('sha256').update(bundle.bytes).digest('hex'))
    const code = Buffer.from(bundle.bytes).toString('utf8')
    expect(code).not.toMatch(/from ["']r1\/plugin["']/) // self-contained: the SDK is inlined
    expect(code).toMatch(/Symbol\.for\("r1\.plugin"\)/)
    expect(bundle.inputs).toContain(join(FIXTURES, 'basic', 'src', 'counter.ts'))
    // the same sources give the same bytes, hence the same name
    expect((await bundleEntry('src/counter.ts', {projectDir: join(FIXTURES, 'basic')})).hash).toBe(bundle.hash)
    // and it runs as is: its default export is the plugin
    const file = join(dir, `${bundle.hash}.mjs`)
    await writeFile(file, bundle.bytes)
    const module = (await import(file)) as {default: {process: (ctx: unknown) => unknown}}
    expect(module.default.process({config: {STEP: 3}})).toEqual({COUNT: 3, STEP: 3})
  })

  it('a build error is an R1Error (exit 3) with file:line:col diagnostics', async () => {
    const error = await bundleEntry('src/broken.ts', {projectDir: join(FIXTURES, 'bad-bundle')}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(R1Error)
    const r1 = error as R1Error
    expect(r1.exitCode).toBe(3)
    expect(r1.code).toBe('BUNDLE_FAILED')
    expect(r1.message).toMatch(/src\/broken\.ts:6:\d+ error: /)
    const {diagnostics} = r1.details as {diagnostics: Array<{file: string; line: number; column: number}>}
    expect(diagnostics[0]).toMatchObject({line: 6})
    expect(diagnostics[0].file).toMatch(/broken\.ts$/)
  })

  it('an unresolvable import is reported where it is written', async () => {
    await writeFile(join(dir, 'entry.ts'), "import {definePlugin} from 'r1/plugin'\nimport x from 'not-a-package'\nexport default definePlugin({process: () => ({X: x})})\n")
    const error = (await bundleEntry('entry.ts', {projectDir: dir}).catch((e: unknown) => e)) as R1Error
    expect(error.message).toMatch(/entry\.ts:2:15 error: Could not resolve "not-a-package"/)
  })

  it('a missing entry is exit 3 naming the file', async () => {
    await expect(bundleEntry('src/nope.ts', {projectDir: dir})).rejects.toThrow(/Plugin entry not found: .*src\/nope\.ts/)
  })
})

describe('BundleStore', () => {
  it('stores bytes by hash after verifying them, refuses a mismatch', async () => {
    const store = new BundleStore(join(dir, 'bundles'))
    const bytes = new TextEncoder().encode('export default {}\n')
    const hash = createHash('sha256').update(bytes).digest('hex')
    expect(store.has(hash)).toBe(false)
    await store.put(hash, bytes)
    expect(store.has(hash)).toBe(true)
    expect(await readFile(store.path(hash), 'utf8')).toBe('export default {}\n')
    await expect(store.put('f'.repeat(64), bytes)).rejects.toThrow(/does not match its hash/)
    expect(store.has('f'.repeat(64))).toBe(false)
    expect(() => store.path('../../etc/passwd')).toThrow(/Not a bundle hash/)
  })
})
