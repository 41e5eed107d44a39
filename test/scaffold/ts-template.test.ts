// The ts-plugin template ships TypeScript and a typecheck script, so a type error in a new project surfaces.
import {mkdir, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

const ROOT = resolve(import.meta.dirname, '../..')
let work: string
let project: string

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'r1-ts-template-'))
  project = join(work, 'typed')
  const init = await execa(process.execPath, [join(ROOT, 'bin/run.js'), 'init', project, '--yes', '--template', 'ts-plugin', '--no-install', '--no-git'], {reject: false, stdin: 'ignore', env: {NO_COLOR: '1', CI: '1'}})
  expect(init.exitCode, init.stderr).toBe(0)
  // what an install would bring, from this checkout
  await mkdir(join(project, 'node_modules/@types'), {recursive: true})
  await symlink(ROOT, join(project, 'node_modules/r1'))
  for (const dep of ['typescript', 'tsx', '@types/node']) await symlink(join(ROOT, 'node_modules', dep), join(project, 'node_modules', dep))
}, 60_000)

afterAll(() => rm(work, {recursive: true, force: true}))

describe('ts-plugin template', () => {
  it('declares typescript and a typecheck script', async () => {
    const pkg = JSON.parse(await readFile(join(project, 'package.json'), 'utf8'))
    expect(pkg.devDependencies.typescript).toMatch(/^\^5\./)
    expect(pkg.scripts.typecheck).toBe('tsc -p tsconfig.json')
  })

  it('typechecks as generated, and a type error fails the typecheck', async () => {
    const tsc = () => execa(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {cwd: project, reject: false, stdin: 'ignore'})
    const clean = await tsc()
    expect(clean.exitCode, clean.stdout).toBe(0)
    const entry = join(project, 'src', (await readFile(join(project, 'config.yaml'), 'utf8')).match(/entry: src\/(\S+)/)![1])
    await writeFile(entry, (await readFile(entry, 'utf8')) + '\nconst wrong: number = "not a number"\nexport {wrong}\n')
    const broken = await tsc()
    expect(broken.exitCode).not.toBe(0)
    expect(broken.stdout).toContain('TS2322')
  }, 60_000)
})
