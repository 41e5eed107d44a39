import {execFileSync} from 'node:child_process'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, dirname, join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {r1DependencySpec, r1Version, R1_ROOT} from '../../src/scaffold/package-root.js'
import {detectPackageManager, initGitRepository} from '../../src/scaffold/setup.js'

let root: string
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'r1-setup-'))
})
afterEach(async () => {
  await rm(root, {recursive: true, force: true})
})

describe('the r1 dependency of a generated project', () => {
  it('links this checkout by a path relative to the project (never an absolute one) when r1 does not run from node_modules', () => {
    expect(r1DependencySpec(R1_ROOT, join(R1_ROOT, 'templates', 'demo'))).toBe('file:../..')
    expect(r1DependencySpec(R1_ROOT, join(dirname(R1_ROOT), 'my-app'))).toBe(`file:../${basename(R1_ROOT)}`)
    expect(r1DependencySpec(R1_ROOT, join(root, 'a', 'b'))).not.toMatch(/^file:\//)
  })

  it('asks the registry for this version when r1 was installed from it', async () => {
    const installed = join(root, 'node_modules', 'r1')
    await mkdir(installed, {recursive: true})
    await writeFile(join(installed, 'package.json'), JSON.stringify({name: 'r1', version: '2.3.4'}))
    expect(r1Version(installed)).toBe('2.3.4')
    expect(r1DependencySpec(installed)).toBe('^2.3.4')
    expect(r1DependencySpec(installed, join(root, 'project'))).toBe('^2.3.4')
  })
})

describe('initGitRepository', () => {
  const identity = {GIT_AUTHOR_NAME: 'r1 test', GIT_AUTHOR_EMAIL: 't@r1.invalid', GIT_COMMITTER_NAME: 'r1 test', GIT_COMMITTER_EMAIL: 't@r1.invalid'}
  let saved: NodeJS.ProcessEnv
  beforeEach(() => {
    saved = {...process.env}
    Object.assign(process.env, identity)
  })
  afterEach(() => {
    process.env = saved
  })

  it('creates a repository with a first commit of every file', async () => {
    const dir = join(root, 'project')
    await mkdir(dir)
    await writeFile(join(dir, 'config.yaml'), 'name: x\n')
    expect(await initGitRepository(dir)).toBe('committed')
    expect(execFileSync('git', ['log', '--format=%s'], {cwd: dir, encoding: 'utf8'}).trim()).toBe('Initial commit from r1 init')
    expect(execFileSync('git', ['ls-files'], {cwd: dir, encoding: 'utf8'}).trim()).toBe('config.yaml')
  })

  it('makes no nested repository inside an existing work tree', async () => {
    execFileSync('git', ['init', '--quiet'], {cwd: root})
    const dir = join(root, 'inner')
    await mkdir(dir)
    expect(await initGitRepository(dir)).toBe('skipped-inside-repository')
    expect(execFileSync('git', ['rev-parse', '--show-toplevel'], {cwd: dir, encoding: 'utf8'}).trim()).toBe(root)
  })
})

it('detects the package manager that launched r1', () => {
  expect(detectPackageManager({npm_config_user_agent: 'pnpm/9.1.0 npm/? node/v20'})).toBe('pnpm')
  expect(detectPackageManager({npm_config_user_agent: 'yarn/4.0.0 npm/? node/v20'})).toBe('yarn')
  expect(detectPackageManager({npm_config_user_agent: 'npm/10.0.0 node/v20'})).toBe('npm')
  expect(detectPackageManager({})).toBe('npm')
})
