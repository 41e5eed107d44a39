import {mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {renderTemplate, substitute} from '../../src/scaffold/render.js'
import {loadTemplateMeta, type TemplateMeta} from '../../src/scaffold/template.js'

let root: string
let source: string

async function write(base: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(join(base, rel, '..'), {recursive: true})
    await writeFile(join(base, rel), content)
  }
}

const meta = (extra: Partial<TemplateMeta> = {}): TemplateMeta => ({
  description: 'test template',
  variables: {name: 'my-plugin', signature: 'MY_PLUGIN', schemaPath: '../../dist/config.schema.json', r1Dependency: 'file:../..'},
  rename: {gitignore: '.gitignore'},
  exclude: [],
  ...extra,
})

const values = {name: 'sensor-watch', signature: 'TEMP_MONITOR', schemaPath: 'node_modules/r1/dist/config.schema.json', r1Dependency: '^1.2.3'}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'r1-render-'))
  source = join(root, 'template')
  await write(source, {
    'template.json': '{}',
    'config.yaml': '# yaml-language-server: $schema=../../dist/config.schema.json\nname: my-plugin\nplugins:\n  MY_PLUGIN: {entry: src/my-plugin.ts}\n',
    'package.json': '{"name": "my-plugin", "devDependencies": {"r1": "file:../.."}}\n',
    'src/my-plugin.ts': 'export const signature = "MY_PLUGIN" // my-plugin-1\n',
    'gitignore': 'node_modules/\n',
    'node_modules/junk/index.js': 'never copied',
    '.git/HEAD': 'never copied',
    'logo.bin': Buffer.from([0x89, 0x00, 0x6d, 0x79, 0x2d, 0x70, 0x6c, 0x75, 0x67, 0x69, 0x6e]),
  })
})

afterEach(async () => {
  await rm(root, {recursive: true, force: true})
})

describe('substitute', () => {
  it('replaces every default in one pass, longest first, never re-replacing', () => {
    const pairs: Array<[string, string]> = [['my-plugin', 'my-plugin-x'], ['my-plugin-x', 'other']]
    expect(substitute('my-plugin my-plugin-x', pairs)).toBe('my-plugin-x other')
    expect(substitute('a.b*c', [['.b*', '-']])).toBe('a-c')
  })
})

describe('renderTemplate', () => {
  it('copies the template with the variables replaced in contents and paths', async () => {
    const target = join(root, 'out', 'sensor-watch')
    const files = await renderTemplate({source, meta: meta(), values, target})
    expect(files).toEqual(['.gitignore', 'config.yaml', 'logo.bin', 'package.json', 'src/sensor-watch.ts'])
    expect(await readFile(join(target, 'config.yaml'), 'utf8')).toBe(
      '# yaml-language-server: $schema=node_modules/r1/dist/config.schema.json\nname: sensor-watch\nplugins:\n  TEMP_MONITOR: {entry: src/sensor-watch.ts}\n',
    )
    expect(JSON.parse(await readFile(join(target, 'package.json'), 'utf8'))).toEqual({name: 'sensor-watch', devDependencies: {r1: '^1.2.3'}})
    expect(await readFile(join(target, 'src/sensor-watch.ts'), 'utf8')).toBe('export const signature = "TEMP_MONITOR" // sensor-watch-1\n')
    // binary files are copied byte for byte
    expect(await readFile(join(target, 'logo.bin'))).toEqual(await readFile(join(source, 'logo.bin')))
    expect(await readdir(join(root, 'out'))).toEqual(['sensor-watch'])
  })

  it('refuses a non-empty target and leaves it as it was', async () => {
    const target = join(root, 'busy')
    await write(target, {'keep.txt': 'mine'})
    const error = await renderTemplate({source, meta: meta(), values, target}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(R1Error)
    expect(error).toMatchObject({exitCode: 1, code: 'TARGET_NOT_EMPTY'})
    expect((error as R1Error).hint).toMatch(/--force/)
    expect(await readdir(target)).toEqual(['keep.txt'])
  })

  it('with force, writes into a non-empty folder, replacing same-named files and keeping the others', async () => {
    const target = join(root, 'busy')
    await write(target, {'keep.txt': 'mine', 'config.yaml': 'old', 'src/old.ts': 'old'})
    await renderTemplate({source, meta: meta(), values, target, force: true})
    expect((await readdir(target)).sort()).toEqual(['.gitignore', 'config.yaml', 'keep.txt', 'logo.bin', 'package.json', 'src'])
    expect(await readFile(join(target, 'keep.txt'), 'utf8')).toBe('mine')
    expect(await readFile(join(target, 'config.yaml'), 'utf8')).toMatch(/name: sensor-watch/)
    expect(await readdir(join(target, 'src'))).toEqual(['sensor-watch.ts'])
  })

  it('renders into an existing empty folder without replacing the folder itself', async () => {
    const target = join(root, 'empty')
    await mkdir(target)
    const before = (await stat(target)).ino
    await renderTemplate({source, meta: meta(), values, target})
    expect((await stat(target)).ino).toBe(before)
    expect(await readdir(target)).toContain('config.yaml')
  })

  it('leaves nothing behind when the check of the staged project fails', async () => {
    const target = join(root, 'deep', 'er', 'project')
    let staged = ''
    const error = await renderTemplate({
      source, meta: meta(), values, target,
      check: async (dir) => {
        staged = dir
        expect(await readdir(dir)).toContain('config.yaml')
        throw new R1Error('broken', 3)
      },
    }).catch((e: unknown) => e)
    expect(error).toMatchObject({message: 'broken', exitCode: 3})
    expect(staged).not.toBe('')
    await expect(stat(staged)).rejects.toThrow()
    // the parents it created for the target are gone too
    expect(await readdir(root)).toEqual(['template'])
  })

  it('leaves an existing target untouched when the check fails', async () => {
    const target = join(root, 'busy')
    await write(target, {'keep.txt': 'mine'})
    await expect(renderTemplate({source, meta: meta(), values, target, force: true, check: async () => {
      throw new Error('no')
    }})).rejects.toThrow('no')
    expect(await readdir(target)).toEqual(['keep.txt'])
  })

  it('stops when aborted and removes the staging folder', async () => {
    const target = join(root, 'aborted')
    const controller = new AbortController()
    controller.abort(new Error('interrupted'))
    await expect(renderTemplate({source, meta: meta(), values, target, signal: controller.signal})).rejects.toThrow('interrupted')
    expect(await readdir(root)).toEqual(['template'])
  })

  it('refuses a project folder inside the template folder, or around it', async () => {
    await expect(renderTemplate({source, meta: meta(), values, target: join(source, 'sub')})).rejects.toMatchObject({exitCode: 2, code: 'TARGET_IN_TEMPLATE'})
    await expect(renderTemplate({source, meta: meta(), values, target: root, force: true})).rejects.toMatchObject({code: 'TARGET_IN_TEMPLATE'})
    expect(await readdir(root)).toEqual(['template'])
  })

  it('skips the excluded entries a template declares', async () => {
    const target = join(root, 'out')
    const files = await renderTemplate({source, meta: meta({exclude: ['logo.bin']}), values, target})
    expect(files).not.toContain('logo.bin')
  })
})

describe('loadTemplateMeta', () => {
  it('infers the variables of a folder without template.json from config.yaml and package.json', async () => {
    await rm(join(source, 'template.json'))
    expect(await loadTemplateMeta(source)).toMatchObject({
      variables: {name: 'my-plugin', signature: 'MY_PLUGIN', schemaPath: '../../dist/config.schema.json', r1Dependency: 'file:../..'},
    })
  })

  it('rejects a template.json that does not match its schema, naming the key', async () => {
    await writeFile(join(source, 'template.json'), JSON.stringify({description: 'x', variables: {name: 'a', color: 'red'}}))
    await expect(loadTemplateMeta(source)).rejects.toMatchObject({exitCode: 3, code: 'TEMPLATE_META_INVALID', message: expect.stringMatching(/variables/)})
    await writeFile(join(source, 'template.json'), '{not json')
    await expect(loadTemplateMeta(source)).rejects.toMatchObject({exitCode: 3, message: expect.stringMatching(/not valid JSON/)})
  })
})
