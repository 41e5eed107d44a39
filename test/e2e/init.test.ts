import {execFileSync} from 'node:child_process'
import {cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, relative, resolve} from 'node:path'
import {pathToFileURL} from 'node:url'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

/**
 * `r1 init` and `r1 templates` from the built CLI (bin/run.js → dist/). Every template is generated
 * non-interactively, validated and its own tests run; the prompts are driven on a real pseudo-terminal.
 *
 * Dependencies of generated projects: templates whose only dependency is r1 (`file:` this checkout, relative)
 * get a real `npm install` (offline: npm links the folder). The TypeScript ones also need tsx from the
 * registry, so instead of installing they get the links npm would make, to this checkout and its tsx.
 */

const ROOT = resolve(import.meta.dirname, '../..')
const BIN = join(ROOT, 'bin/run.js')
const TEMPLATES = ['ts-plugin', 'js-plugin', 'process-app', 'custom-code', 'app-stack']
const LINKED_ONLY = new Set(['js-plugin', 'process-app', 'custom-code'])

let work: string

// The first commit of `git init` needs an identity, whatever the machine's git config.
const GIT_IDENTITY = {GIT_AUTHOR_NAME: 'r1 test', GIT_AUTHOR_EMAIL: 'test@r1.invalid', GIT_COMMITTER_NAME: 'r1 test', GIT_COMMITTER_EMAIL: 'test@r1.invalid'}

function r1(args: string[], options: {cwd?: string; env?: Record<string, string>} = {}) {
  return execa(process.execPath, [BIN, ...args], {cwd: options.cwd ?? work, reject: false, env: {NO_COLOR: '1', ...GIT_IDENTITY, ...options.env}, stdin: 'ignore'})
}

/** What `npm install` of a generated project would link: r1 (this checkout) and the repo's tsx. */
async function linkDependencies(dir: string): Promise<void> {
  await mkdir(join(dir, 'node_modules/.bin'), {recursive: true})
  await symlink(ROOT, join(dir, 'node_modules/r1'))
  await symlink(join(ROOT, 'node_modules/tsx'), join(dir, 'node_modules/tsx'))
  await symlink('../r1/bin/run.js', join(dir, 'node_modules/.bin/r1'))
}

/** Entries of `dir`, for "nothing half-written is left" checks. */
const entries = async (dir: string) => (await readdir(dir)).sort()

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'r1-init-e2e-'))
})

afterAll(async () => {
  await rm(work, {recursive: true, force: true})
})

describe('r1 templates', () => {
  it('lists the built-in templates with descriptions, as text and as JSON', async () => {
    const human = await r1(['templates'])
    expect(human.exitCode).toBe(0)
    for (const id of TEMPLATES) expect(human.stdout).toMatch(new RegExp(`^${id} +\\S.{20,}`, 'm'))
    const json = await r1(['templates', '--json'])
    const listed = JSON.parse(json.stdout).templates
    expect(listed.map((t: {id: string}) => t.id)).toEqual(TEMPLATES)
    expect(JSON.parse((await r1(['init', '--list', '--json'])).stdout).templates).toEqual(listed)
  })
})

describe.each(TEMPLATES)('r1 init --yes --template %s', (template) => {
  let dir: string
  let result: Record<string, unknown>

  beforeAll(async () => {
    dir = join(work, `gen-${template}`)
    // The plain ones take every default (install with npm, git init); the TypeScript ones skip the registry install.
    const extra = LINKED_ONLY.has(template) ? [] : ['--no-install', '--no-git']
    const run = await r1(['init', dir, '--yes', '--template', template, '--json', ...extra])
    expect(run.stderr).toBe('')
    expect(run.exitCode).toBe(0)
    result = JSON.parse(run.stdout)
    if (!LINKED_ONLY.has(template)) await linkDependencies(dir)
  }, 120_000)

  it('reports what it made', async () => {
    expect(result).toMatchObject({dir, template, name: `gen-${template}`, installed: LINKED_ONLY.has(template), git: LINKED_ONLY.has(template)})
    expect(result.files).toContain('config.yaml')
    expect(result.files).toContain('README.md')
    expect(result.files).toContain('.gitignore')
    expect(result.files).not.toContain('template.json')
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))
    expect(pkg.name).toBe(`gen-${template}`)
    // Run from a checkout (not from node_modules), r1 points the project at itself, by a relative path.
    expect(pkg.devDependencies.r1).toBe(`file:${relative(dir, ROOT)}`)
    const config = await readFile(join(dir, 'config.yaml'), 'utf8')
    expect(config.split('\n')[0]).toBe('# yaml-language-server: $schema=node_modules/r1/dist/config.schema.json')
    expect(config).toContain(`name: gen-${template}`)
    if (template === 'ts-plugin' || template === 'js-plugin') {
      expect(result.signature).toBe(`GEN_${template.replace('-', '_').toUpperCase()}`)
      expect(config).toContain(`  ${result.signature}:\n`)
    }
  })

  it('passes r1 validate', async () => {
    const run = await r1(['validate', '--json'], {cwd: dir})
    expect(JSON.parse(run.stdout)).toMatchObject({valid: true, diagnostics: []})
    expect(run.exitCode).toBe(0)
  })

  it('runs: r1 run emits payloads from the signature it was given', async () => {
    const run = await r1(['run', '--json', '--duration', '4'], {cwd: dir})
    expect(run.exitCode, run.stderr).toBe(0)
    const events = run.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line))
    const payloads = events.filter((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    expect(payloads.length, run.stdout).toBeGreaterThan(0)
    const signatures = new Set(payloads.map((e) => e.EE_PAYLOAD_PATH[2]))
    if (result.signature) expect(signatures).toContain(result.signature)
    expect(events.filter((e) => e.NOTIFICATION_TYPE === 'EXCEPTION')).toEqual([])
    if (template === 'process-app') {
      // the app's lines are LOG events (its stdout: one JSON object a line); its payloads carry only its status
      const lines = events.filter((e) => e.EE_EVENT_TYPE === 'LOG' && e.EE_PAYLOAD_PATH[2] === 'PROCESS_APP_RUNNER')
      expect(lines.length, run.stdout).toBeGreaterThan(0)
      for (const line of lines.filter((e) => e.LEVEL === 'info')) expect(JSON.parse(line.MESSAGE)).toHaveProperty('event')
      expect(payloads.every((p) => typeof p.APP_STATUS === 'string' && p.OUTPUT === undefined)).toBe(true)
    }
  }, 120_000)

  it('passes its own tests', async () => {
    if (LINKED_ONLY.has(template)) {
      // npm linked this checkout, with its bin
      expect((await lstat(join(dir, 'node_modules/r1'))).isSymbolicLink()).toBe(true)
      expect(resolve(dir, 'node_modules', await readlink(join(dir, 'node_modules/r1')))).toBe(ROOT)
      expect(execFileSync('git', ['log', '--format=%s'], {cwd: dir, encoding: 'utf8'}).trim()).toBe('Initial commit from r1 init')
      // the first commit holds everything, the lock file of the install included, and ignores node_modules
      expect(execFileSync('git', ['status', '--porcelain'], {cwd: dir, encoding: 'utf8'})).toBe('')
      expect(execFileSync('git', ['ls-files'], {cwd: dir, encoding: 'utf8'})).toMatch(/^package-lock\.json$/m)
    }
    const run = await execa('npm', ['test'], {cwd: dir, reject: false, env: {NO_COLOR: '1'}})
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toMatch(/# fail 0/)
    expect(run.stdout).not.toMatch(/# pass 0\b/)
  }, 120_000)
})

describe('r1 init on a terminal', () => {
  // Runs a command on a pseudo-terminal and answers each prompt (regex → keys) as it appears.
  const DRIVER = String.raw`
import json, os, pty, re, select, sys, time
steps = json.loads(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
ansi = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]|\r')
buf = b''; seen = 0; deadline = time.time() + 90
def read(timeout):
    global buf
    if not select.select([fd], [], [], timeout)[0]: return False
    try: data = os.read(fd, 65536)
    except OSError: return None
    if not data: return None
    buf += data; return True
for pattern, keys in steps:
    while not re.search(pattern, ansi.sub('', buf[seen:].decode('utf8', 'replace'))):
        if time.time() > deadline or read(0.5) is None:
            sys.stdout.write(ansi.sub('', buf.decode('utf8', 'replace')))
            sys.stdout.write('\n[driver] no prompt matching %r\n' % pattern)
            os.kill(pid, 9); os.waitpid(pid, 0); sys.exit(99)
    seen = len(buf); time.sleep(0.05); os.write(fd, keys.encode())
while time.time() < deadline and read(1) is not None: pass
status = os.waitpid(pid, 0)[1]
sys.stdout.write(ansi.sub('', buf.decode('utf8', 'replace')))
sys.exit(os.waitstatus_to_exitcode(status))
`
  let driver: string
  beforeAll(async () => {
    driver = join(work, 'pty-driver.py')
    await writeFile(driver, DRIVER)
  })

  const drive = (steps: Array<[string, string]>, args: string[]) =>
    execa('python3', [driver, JSON.stringify(steps), process.execPath, BIN, ...args], {cwd: work, reject: false, env: {TERM: 'xterm-256color', CI: ''}})

  it('asks for template, name, signature, install and git, and makes the project from the answers', async () => {
    const down = '\u001B[B'
    const run = await drive(
      [
        ['Template', `${down}\r`], // ts-plugin → js-plugin
        ['Project name', 'weather-station\r'],
        ['Signature of the first plugin.*WEATHER_STATION', 'WEATHER_FEED\r'],
        ['Install dependencies\\?', 'n\r'],
        ['Initialize a git repository\\?', 'n\r'],
      ],
      ['init', 'interactive'],
    )
    expect(run.exitCode, run.stdout).toBe(0)
    expect(run.stdout).toMatch(/Created weather-station from js-plugin in interactive/)
    const dir = join(work, 'interactive')
    expect(await entries(dir)).toEqual(['.gitignore', 'README.md', 'config.yaml', 'package.json', 'src', 'test'])
    const config = await readFile(join(dir, 'config.yaml'), 'utf8')
    expect(config).toContain('name: weather-station')
    expect(config).toContain('  WEATHER_FEED:\n    entry: src/plugin.js')
    expect(config).toContain('plugin: WEATHER_FEED')
  }, 120_000)

  it('re-asks on a bad name, and Ctrl-C leaves nothing behind (exit 130)', async () => {
    const before = await entries(work)
    const run = await drive(
      [
        ['Project name', 'Bad Name\r'],
        ['did you mean "bad-name"', '\u0003'],
      ],
      ['init', 'cancelled', '--template', 'ts-plugin'],
    )
    expect(run.exitCode, run.stdout).toBe(130)
    expect(await entries(work)).toEqual(before)
  }, 120_000)
})

describe('r1 init with bad input', () => {
  it('without a terminal, fails listing every missing flag at once (exit 2); the folder names the project', async () => {
    const before = await entries(work)
    const nothing = await r1(['init'])
    expect(nothing.exitCode).toBe(2)
    expect(nothing.stderr).toMatch(/Missing answers .*--template .*--name .*--signature .*--install or --no-install.*--package-manager .*--git or --no-git/)
    const noFlags = await r1(['init', 'x', '--template', 'ts-plugin', '--json'])
    expect(noFlags.exitCode).toBe(2)
    const error = JSON.parse(noFlags.stdout).error
    expect(error).toMatchObject({code: 'MISSING_FLAG', exitCode: 2})
    expect(error.details.missing).toEqual(['--signature <UPPER_SNAKE>', '--install or --no-install', '--package-manager <npm|pnpm|yarn>', '--git or --no-git'])
    expect(await entries(work)).toEqual(before)
    const named = await r1(['init', 'from-folder', '--template', 'ts-plugin', '--signature', 'A_B', '--no-install', '--no-git', '--json'])
    expect(named.exitCode, named.stderr).toBe(0)
    expect(JSON.parse(named.stdout).name).toBe('from-folder')
    await rm(join(work, 'from-folder'), {recursive: true})
  })

  it('a failed install does not skip git init: the repository is made, then the install failure is reported (exit 1)', async () => {
    const bin = join(work, 'node-and-git')
    await mkdir(bin)
    await symlink(process.execPath, join(bin, 'node'))
    await symlink(execFileSync('sh', ['-c', 'command -v git'], {encoding: 'utf8'}).trim(), join(bin, 'git'))
    const dir = join(work, 'git-after-failed-install')
    const run = await r1(['init', dir, '--yes', '--template', 'js-plugin', '--package-manager', 'pnpm', '--git'], {env: {PATH: bin}})
    await rm(bin, {recursive: true})
    expect(run.exitCode).toBe(1)
    expect(run.stderr).toContain('pnpm is not installed')
    expect(await entries(dir)).toContain('.git')
    await rm(dir, {recursive: true})
  })

  it('refuses a non-empty folder (exit 1) and leaves it as it was; --force writes into it', async () => {
    const dir = join(work, 'busy')
    await mkdir(dir)
    await writeFile(join(dir, 'notes.txt'), 'mine')
    const refused = await r1(['init', dir, '--yes', '--template', 'js-plugin', '--no-install', '--no-git'])
    expect(refused.exitCode).toBe(1)
    expect(refused.stderr).toContain(`Directory ${dir} is not empty.`)
    expect(refused.stderr).toContain('--force')
    expect(await entries(dir)).toEqual(['notes.txt'])

    const forced = await r1(['init', dir, '--yes', '--template', 'js-plugin', '--no-install', '--no-git', '--force', '--json'])
    expect(forced.exitCode).toBe(0)
    expect(await entries(dir)).toEqual(['.gitignore', 'README.md', 'config.yaml', 'notes.txt', 'package.json', 'src', 'test'])
    expect(await readFile(join(dir, 'notes.txt'), 'utf8')).toBe('mine')
  })

  it('keeps the complete project when the package manager is missing, and says how to install (exit 1)', async () => {
    // A PATH with node and git only: no pnpm.
    const bin = join(work, 'only-node-and-git')
    await mkdir(bin)
    await symlink(process.execPath, join(bin, 'node'))
    await symlink(execFileSync('sh', ['-c', 'command -v git'], {encoding: 'utf8'}).trim(), join(bin, 'git'))
    const dir = join(work, 'no-pnpm')
    const run = await r1(['init', dir, '--yes', '--template', 'js-plugin', '--package-manager', 'pnpm', '--no-git'], {env: {PATH: bin}})
    await rm(bin, {recursive: true})
    expect(run.exitCode).toBe(1)
    expect(run.stderr).toContain(`pnpm is not installed, so the dependencies of ${dir} were not installed.`)
    expect(run.stderr).toContain(`install its dependencies yourself: cd ${dir} && pnpm install`)
    expect(await entries(dir)).toEqual(['.gitignore', 'README.md', 'config.yaml', 'package.json', 'src', 'test'])
    await rm(dir, {recursive: true})
  })

  it('rejects bad names with the rule and a suggestion (exit 2)', async () => {
    const before = await entries(work)
    const name = await r1(['init', 'n1', '--yes', '--template', 'ts-plugin', '--name', 'My_Project'])
    expect(name.exitCode).toBe(2)
    expect(name.stderr).toMatch(/Invalid --name: "My_Project" is not kebab-case .*did you mean "my-project"\?/)
    const signature = await r1(['init', 'n2', '--yes', '--template', 'ts-plugin', '--signature', 'tempMonitor'])
    expect(signature.exitCode).toBe(2)
    expect(signature.stderr).toMatch(/Invalid --signature: "tempMonitor" is not UPPER_SNAKE .*did you mean "TEMP_MONITOR"\?/)
    // a folder name that is no project name is not taken as the default
    const folder = await r1(['init', '42', '--yes', '--template', 'ts-plugin', '--no-install', '--no-git', '--json'])
    expect(JSON.parse(folder.stdout).name).toBe('my-plugin')
    await rm(join(work, '42'), {recursive: true})
    expect(await entries(work)).toEqual(before)
  })

  it('rejects an unknown template with the list (exit 2)', async () => {
    const run = await r1(['init', 'u', '--yes', '--template', 'ts-plugn'])
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toContain('Unknown template "ts-plugn". Did you mean "ts-plugin"?')
    expect(run.stderr).toContain('ts-plugin, js-plugin, process-app, custom-code, app-stack')
    await expect(lstat(join(work, 'u'))).rejects.toThrow()
  })

  it('rejects a template with an invalid config.yaml with the validator diagnostics (exit 3), writing nothing', async () => {
    const broken = join(work, 'broken-template')
    await cp(join(ROOT, 'templates/js-plugin'), broken, {recursive: true})
    const config = await readFile(join(broken, 'config.yaml'), 'utf8')
    await writeFile(join(broken, 'config.yaml'), config.replace('plugin: MY_PLUGIN', 'plugin: MY_PLUGINN'))
    const before = await entries(work)
    const run = await r1(['init', 'from-broken', '--yes', '--template', broken, '--no-install', '--no-git'])
    expect(run.exitCode).toBe(3)
    expect(run.stderr).toContain(`Template ${broken} is not a valid r1 project (1 error in config.yaml)`)
    expect(run.stderr).toMatch(/broken-template\/config\.yaml:\d+:\d+ error .*MY_PLUGINN/)
    expect(run.stderr).toMatch(/MY_PLUGIN\b/) // did you mean
    const json = await r1(['init', 'from-broken', '--yes', '--template', broken, '--json'])
    expect(json.exitCode).toBe(3)
    const error = JSON.parse(json.stdout).error
    expect(error).toMatchObject({code: 'TEMPLATE_INVALID', exitCode: 3})
    expect(error.details[0]).toMatchObject({severity: 'error', line: expect.any(Number)})
    expect(await entries(work)).toEqual(before)

    await rm(join(broken, 'config.yaml'))
    const missing = await r1(['init', 'from-broken', '--yes', '--template', broken])
    expect(missing.exitCode).toBe(3)
    expect(missing.stderr).toContain('has no config.yaml')
    expect(await entries(work)).toEqual(before)
  })

  it('fails clearly on an unreachable git URL (exit 1), writing nothing', async () => {
    const before = await entries(work)
    for (const url of ['file:///nonexistent/repo.git', 'http://127.0.0.1:1/x.git#v1:t']) {
      const run = await r1(['init', 'from-git', '--yes', '--template', url, '--json'])
      expect(run.exitCode).toBe(1)
      const error = JSON.parse(run.stdout).error
      expect(error).toMatchObject({code: 'TEMPLATE_UNREACHABLE', exitCode: 1, hint: expect.stringContaining('Check the URL')})
      expect(error.message).toContain('Could not fetch template')
    }
    expect(await entries(work)).toEqual(before)
  })
})

describe('r1 init from a git repository', () => {
  let url: string
  beforeAll(async () => {
    const repo = join(work, 'template-repo')
    await mkdir(repo)
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=r1 test', '-c', 'user.email=test@r1.invalid', '-c', 'init.defaultBranch=main', ...args], {cwd: repo})
    git('init', '--quiet')
    await cp(join(ROOT, 'templates/process-app'), join(repo, 'templates/app'), {recursive: true})
    git('add', '--all')
    git('commit', '--quiet', '-m', 'v1')
    git('tag', 'v1')
    await writeFile(join(repo, 'templates/app/app/main.py'), 'raise SystemExit("v2 is broken")\n')
    git('commit', '--quiet', '-am', 'v2')
    url = pathToFileURL(repo).href
  })

  it('takes a tag and a subdirectory from the URL, or from --path', async () => {
    for (const [dir, args] of [
      ['git-a', ['--template', `${url}#v1:templates/app`]],
      ['git-b', ['--template', `${url}#v1`, '--path', 'templates/app']],
    ] as const) {
      const run = await r1(['init', dir, '--yes', ...args, '--no-install', '--no-git', '--json'])
      expect(run.exitCode, run.stdout + run.stderr).toBe(0)
      expect(JSON.parse(run.stdout)).toMatchObject({name: dir, signature: null, template: `${url}#v1:templates/app`})
      expect(await readFile(join(work, dir, 'app/main.py'), 'utf8')).toContain('ThreadingHTTPServer')
      expect(await readFile(join(work, dir, 'config.yaml'), 'utf8')).toContain(`name: ${dir}`)
    }
  })
})
