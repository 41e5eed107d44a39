// r1 init never writes outside the project: a template symlink that leaves the template is refused, and
// no write (a `rename` target included) may go through a symlink out of the project. Local and git templates.
import {execFileSync} from 'node:child_process'
import {cp, mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {renderTemplate} from '../../src/scaffold/render.js'
import type {TemplateMeta} from '../../src/scaffold/template.js'

const ROOT = resolve(import.meta.dirname, '../..')
let root: string
let outsideDir: string

const meta = (rename: Record<string, string> = {}): TemplateMeta => ({description: 't', variables: {name: 'my-plugin'}, rename, exclude: []})

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'r1-unsafe-'))
  outsideDir = join(root, 'outside')
  await mkdir(outsideDir)
})
afterEach(() => rm(root, {recursive: true, force: true}))

async function template(name: string, options: {linkTo: string; rename?: Record<string, string>}): Promise<string> {
  const dir = join(root, name)
  await mkdir(join(dir, 'inner'), {recursive: true})
  await writeFile(join(dir, 'config.yaml'), 'name: my-plugin\nversion: 0.1.0\npipelines: {}\n')
  await writeFile(join(dir, 'notes.txt'), 'written through the link\n')
  await symlink(options.linkTo, join(dir, 'shared'))
  if (options.rename) await writeFile(join(dir, 'template.json'), JSON.stringify({description: 't', variables: {name: 'my-plugin'}, rename: options.rename}))
  return dir
}

describe('renderTemplate', () => {
  it('refuses a symlink pointing outside the template, and a rename through it; nothing is written anywhere', async () => {
    for (const linkTo of [outsideDir, '../outside']) {
      const source = await template(`t-${linkTo.length}`, {linkTo})
      const target = join(root, `project-${linkTo.length}`)
      const error = await renderTemplate({source, meta: meta({'notes.txt': 'shared/pwned.txt'}), values: {name: 'p'}, target}).catch((e) => e)
      expect(error).toMatchObject({code: 'TEMPLATE_UNSAFE_PATH', exitCode: 3})
      expect(error.message).toMatch(/outside the (template|project)/)
      expect(await readdir(outsideDir)).toEqual([])
      await expect(readdir(target)).rejects.toThrow()
      await rm(source, {recursive: true})
    }
  })

  it('keeps a symlink that stays inside the template', async () => {
    const source = await template('inside', {linkTo: 'inner'})
    const target = join(root, 'project-inside')
    const files = await renderTemplate({source, meta: meta(), values: {name: 'p'}, target})
    expect(files).toContain('shared')
    expect(await readlink(join(target, 'shared'))).toBe('inner')
    expect(await readdir(outsideDir)).toEqual([])
  })
})

describe('r1 init', () => {
  const init = (args: string[]) => execa(process.execPath, [join(ROOT, 'bin/run.js'), 'init', ...args, '--yes', '--no-install', '--no-git', '--json'], {cwd: root, reject: false, stdin: 'ignore', env: {NO_COLOR: '1', CI: '1'}})

  it('refuses a local template whose symlinked folder leads out, exit 3, writing nothing outside', async () => {
    const source = await template('local', {linkTo: outsideDir, rename: {'notes.txt': 'shared/pwned.txt'}})
    const run = await init(['from-local', '--template', source])
    expect(run.exitCode, run.stdout + run.stderr).toBe(3)
    expect(JSON.parse(run.stdout).error.code).toBe('TEMPLATE_UNSAFE_PATH')
    expect(await readdir(outsideDir)).toEqual([])
    expect((await readdir(root)).includes('from-local')).toBe(false)
  })

  it('refuses the same through a git template', async () => {
    const repo = join(root, 'repo')
    await cp(await template('git-src', {linkTo: '../../outside', rename: {'notes.txt': 'shared/pwned.txt'}}), repo, {recursive: true, verbatimSymlinks: true})
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@r1.invalid', '-c', 'init.defaultBranch=main', ...args], {cwd: repo, encoding: 'utf8'})
    git('init', '--quiet')
    git('add', '--all')
    git('commit', '--quiet', '-m', 'evil')
    const run = await init(['from-git', '--template', `file://${repo}`])
    expect(run.exitCode, run.stdout + run.stderr).toBe(3)
    expect(JSON.parse(run.stdout).error.code).toBe('TEMPLATE_UNSAFE_PATH')
    expect(await readdir(outsideDir)).toEqual([])
  })
})
