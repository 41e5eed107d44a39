import {readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {BUILTIN_SIGNATURES} from '../../src/manifest/fields.js'
import {validateProject} from '../../src/manifest/index.js'
import {projectNameProblem, signatureProblem} from '../../src/scaffold/names.js'
import {BUILTIN_TEMPLATES_DIR} from '../../src/scaffold/package-root.js'
import {listBuiltinTemplates, loadTemplateMeta} from '../../src/scaffold/template.js'

const EXPECTED = ['ts-plugin', 'js-plugin', 'process-app', 'custom-code', 'app-stack']

describe('built-in templates', async () => {
  const templates = await listBuiltinTemplates()

  it('are listed in order, each with a description', () => {
    expect(templates.map((t) => t.id)).toEqual(EXPECTED)
    for (const t of templates) expect(t.description.length).toBeGreaterThan(20)
  })

  describe.each(EXPECTED)('%s', (id) => {
    const dir = join(BUILTIN_TEMPLATES_DIR, id)

    it('is a valid r1 project as it is', async () => {
      const result = await validateProject(dir)
      expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([])
      expect(result.valid).toBe(true)
    })

    it('declares variables that match its files', async () => {
      const meta = await loadTemplateMeta(dir)
      const config = await readFile(join(dir, 'config.yaml'), 'utf8')
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))
      const manifest = (await validateProject(dir)).manifest!
      expect(projectNameProblem(meta.variables.name)).toBeUndefined()
      expect(manifest.name).toBe(meta.variables.name)
      expect(pkg.name).toBe(meta.variables.name)
      if (meta.variables.signature) {
        expect(signatureProblem(meta.variables.signature)).toBeUndefined()
        expect(Object.keys(manifest.plugins)[0]).toBe(meta.variables.signature)
      } else {
        // a built-in may be listed only to ship files with it
        expect(Object.keys(manifest.plugins).filter((s) => !BUILTIN_SIGNATURES.includes(s))).toEqual([])
      }
      // The editor line comes first and points at the schema this repository builds.
      expect(config.split('\n')[0]).toBe(`# yaml-language-server: $schema=${meta.variables.schemaPath}`)
      expect(join(dir, meta.variables.schemaPath!)).toBe(join(BUILTIN_TEMPLATES_DIR, '..', 'dist', 'config.schema.json'))
      expect(pkg.devDependencies.r1).toBe(meta.variables.r1Dependency)
      expect(join(dir, meta.variables.r1Dependency!.replace(/^file:/, ''))).toBe(join(BUILTIN_TEMPLATES_DIR, '..'))
    })

    it('has a README on running, testing and deploying, a test script and a gitignore', async () => {
      const readme = await readFile(join(dir, 'README.md'), 'utf8')
      for (const section of ['## Run', '## Test', '## Deploy']) expect(readme).toContain(section)
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))
      expect(pkg.scripts.test).toMatch(/^node /)
      expect(pkg.type).toBe('module')
      expect((await stat(join(dir, 'gitignore'))).isFile()).toBe(true)
    })
  })
})
