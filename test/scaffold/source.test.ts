import {execFileSync} from 'node:child_process'
import {cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {fetchTemplate, parseTemplateRef} from '../../src/scaffold/source.js'

describe('parseTemplateRef', () => {
  it('reads built-in ids, local paths and git URLs with #ref and :subdir', () => {
    expect(parseTemplateRef('ts-plugin')).toEqual({kind: 'builtin', id: 'ts-plugin'})
    expect(parseTemplateRef('./ts-plugin')).toEqual({kind: 'local', path: './ts-plugin'})
    expect(parseTemplateRef('/abs/dir')).toEqual({kind: 'local', path: '/abs/dir'})
    expect(parseTemplateRef('../t', 'sub')).toEqual({kind: 'local', path: join('../t', 'sub')})
    expect(parseTemplateRef('https://example.com/r.git')).toEqual({kind: 'git', url: 'https://example.com/r.git'})
    expect(parseTemplateRef('https://example.com/r.git#v1:templates/x')).toEqual({kind: 'git', url: 'https://example.com/r.git', ref: 'v1', subdir: 'templates/x'})
    expect(parseTemplateRef('file:///srv/r#main')).toEqual({kind: 'git', url: 'file:///srv/r', ref: 'main'})
    expect(parseTemplateRef('git@example.com:me/r.git#:sub/')).toEqual({kind: 'git', url: 'git@example.com:me/r.git', subdir: 'sub'})
    expect(parseTemplateRef('https://example.com/r.git#abc1234', 'a/b')).toEqual({kind: 'git', url: 'https://example.com/r.git', ref: 'abc1234', subdir: 'a/b'})
    expect(parseTemplateRef('some/where/repo.git')).toEqual({kind: 'git', url: 'some/where/repo.git'})
  })

  it('rejects a subdirectory that leaves the repository, or one given twice', () => {
    expect(() => parseTemplateRef('https://example.com/r.git#v1:../x')).toThrow(/leaves the repository/)
    expect(() => parseTemplateRef('https://example.com/r.git', '/etc')).toThrow(/leaves the repository/)
    expect(() => parseTemplateRef('https://example.com/r.git#v1:a', 'b')).toThrow(/subdirectory twice/)
    expect(() => parseTemplateRef('  ')).toThrow(/empty/)
  })
})

describe('fetchTemplate', () => {
  let root: string
  let repo: string
  let url: string
  let firstCommit: string
  let previousTmp: string | undefined
  let scratch: string
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=r1 test', '-c', 'user.email=test@r1.invalid', '-c', 'init.defaultBranch=main', ...args], {cwd: repo, encoding: 'utf8'}).trim()

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'r1-source-'))
    repo = join(root, 'repo')
    await mkdir(repo)
    git('init', '--quiet')
    await cp(join(import.meta.dirname, '../../templates/js-plugin'), join(repo, 'templates/sensor'), {recursive: true})
    await writeFile(join(repo, 'templates/sensor/VERSION'), 'one\n')
    git('add', '--all')
    git('commit', '--quiet', '-m', 'one')
    git('tag', 'v1')
    firstCommit = git('rev-parse', 'HEAD')
    await writeFile(join(repo, 'templates/sensor/VERSION'), 'two\n')
    git('commit', '--quiet', '-am', 'two')
    url = pathToFileURL(repo).href
    // Clones go to a temp folder of this test's own, to check they are removed.
    previousTmp = process.env.TMPDIR
    scratch = join(root, 'tmp')
    await mkdir(scratch)
    process.env.TMPDIR = scratch
  })

  afterEach(async () => {
    expect(await readdir(scratch)).toEqual([])
  })

  afterAll(async () => {
    if (previousTmp === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previousTmp
    await rm(root, {recursive: true, force: true})
  })

  const version = async (dir: string) => (await readFile(join(dir, 'VERSION'), 'utf8')).trim()

  it('clones a tag and picks a subdirectory', async () => {
    const template = await fetchTemplate(parseTemplateRef(`${url}#v1:templates/sensor`))
    try {
      expect(await version(template.dir)).toBe('one')
      expect(template.meta.variables.name).toBe('my-plugin')
      expect(template.label).toBe(`${url}#v1:templates/sensor`)
    } finally {
      await template.cleanup()
    }
  })

  it('clones the default branch, a branch by name, and a commit by sha (subdirectory from --path)', async () => {
    for (const [ref, expected] of [['', 'two'], ['#main', 'two'], [`#${firstCommit.slice(0, 10)}`, 'one']]) {
      const template = await fetchTemplate(parseTemplateRef(`${url}${ref}`, 'templates/sensor'))
      try {
        expect(await version(template.dir)).toBe(expected)
      } finally {
        await template.cleanup()
      }
    }
  })

  it('fails clearly, exit 1, on a ref that does not exist', async () => {
    const error = (await fetchTemplate(parseTemplateRef(`${url}#v9:templates/sensor`)).catch((e: unknown) => e)) as R1Error
    expect(error).toBeInstanceOf(R1Error)
    expect(error).toMatchObject({exitCode: 1, code: 'TEMPLATE_REF_NOT_FOUND'})
    expect(error.message).toContain(`Could not fetch template ${url}#v9`)
    expect(error.hint).toMatch(/"v9" is a branch, tag or commit/)
    const sha = (await fetchTemplate(parseTemplateRef(`${url}#deadbeef1`)).catch((e: unknown) => e)) as R1Error
    expect(sha).toMatchObject({exitCode: 1, code: 'TEMPLATE_REF_NOT_FOUND'})
  })

  it('fails clearly on a subdirectory the repository does not have', async () => {
    await expect(fetchTemplate(parseTemplateRef(`${url}#v1:templates/nope`))).rejects.toMatchObject({exitCode: 2, message: expect.stringMatching(/no folder "templates\/nope"/)})
  })

  it('fails clearly, exit 1, on an unreachable repository', async () => {
    for (const bad of ['file:///nonexistent/repo.git', 'http://127.0.0.1:1/x.git']) {
      const error = (await fetchTemplate(parseTemplateRef(bad)).catch((e: unknown) => e)) as R1Error
      expect(error).toMatchObject({exitCode: 1, code: 'TEMPLATE_UNREACHABLE'})
      expect(error.message).toContain(`Could not fetch template ${bad}:`)
      expect(error.hint).toMatch(/Check the URL/)
    }
  })

  it('finds built-in templates and rejects unknown ids with the list', async () => {
    const builtin = await fetchTemplate(parseTemplateRef('ts-plugin'))
    expect(builtin.meta.variables).toMatchObject({name: 'my-plugin', signature: 'MY_PLUGIN'})
    const error = (await fetchTemplate(parseTemplateRef('ts-plugins')).catch((e: unknown) => e)) as R1Error
    expect(error).toMatchObject({exitCode: 2, code: 'TEMPLATE_UNKNOWN'})
    expect(error.message).toMatch(/Unknown template "ts-plugins". Did you mean "ts-plugin"\?/)
    expect(error.hint).toMatch(/ts-plugin, js-plugin, process-app, custom-code, app-stack/)
  })

  it('takes a bare name that is no built-in id as a folder here, when there is one', async () => {
    await cp(join(import.meta.dirname, '../../templates/js-plugin'), join(root, 'my-template'), {recursive: true})
    const template = await fetchTemplate(parseTemplateRef('my-template'), {cwd: root})
    expect(template.dir).toBe(join(root, 'my-template'))
    expect(template.label).toBe('my-template')
  })

  it('rejects a local folder that does not exist', async () => {
    await expect(fetchTemplate(parseTemplateRef('./nowhere/at-all'), {cwd: root})).rejects.toMatchObject({exitCode: 2, message: expect.stringMatching(/does not exist/)})
  })
})
