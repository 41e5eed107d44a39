import {mkdtemp, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {isAbsolute, join, normalize, resolve, sep} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {closest} from '../manifest/diagnostics.js'
import {listBuiltinTemplates, loadTemplateMeta, type TemplateMeta} from './template.js'

/** Where a template comes from, as parsed from `--template` (and `--path`). */
export type TemplateRef =
  | {kind: 'builtin'; id: string}
  | {kind: 'local'; path: string}
  | {kind: 'git'; url: string; ref?: string; subdir?: string}

/** A template ready to render: its folder on disk and its description. */
export interface FetchedTemplate {
  /** What the user asked for, for messages and the `--json` result. */
  label: string
  dir: string
  meta: TemplateMeta
  /** Removes what fetching created (a clone); safe to call twice. */
  cleanup(): Promise<void>
}

const GIT_URL = /^(?:(?:https?|git|ssh|file|git\+ssh|git\+https):\/\/|[\w.-]+@[\w.-]+:)/

/**
 * Parses a template reference:
 * - a built-in id (`ts-plugin`);
 * - a local folder (`./my-template`, `/abs/dir`);
 * - a git URL with an optional `#ref` and `:subdir` (`https://host/repo.git#v1:templates/x`,
 *   `file:///srv/repo.git#main`), or ending in `.git`.
 * `subpath` (`--path`) picks a folder inside a git repository or a local folder.
 */
export function parseTemplateRef(input: string, subpath?: string): TemplateRef {
  const text = input.trim()
  if (text === '') throw new R1Error('The template is empty.', ExitCode.USAGE, {code: 'TEMPLATE_UNKNOWN', hint: 'Pass --template <id|path|git-url>; `r1 templates` lists the built-in ones.'})
  const hash = text.indexOf('#')
  const base = hash === -1 ? text : text.slice(0, hash)
  if (GIT_URL.test(base) || /\.git\/?$/.test(base)) {
    let ref: string | undefined
    let subdir: string | undefined
    if (hash !== -1) {
      const fragment = text.slice(hash + 1)
      const colon = fragment.indexOf(':')
      ref = (colon === -1 ? fragment : fragment.slice(0, colon)) || undefined
      subdir = colon === -1 ? undefined : fragment.slice(colon + 1) || undefined
    }
    if (subpath) {
      if (subdir) throw new R1Error(`The template names a subdirectory twice ("${subdir}" in the URL and "${subpath}" in --path).`, ExitCode.USAGE, {code: 'TEMPLATE_REF_INVALID', hint: 'Keep one of them.'})
      subdir = subpath
    }
    if (subdir) subdir = checkSubdir(subdir)
    return {kind: 'git', url: base, ...(ref ? {ref} : {}), ...(subdir ? {subdir} : {})}
  }
  if (/^[a-z0-9][a-z0-9-]*$/.test(text) && !subpath) return {kind: 'builtin', id: text}
  return {kind: 'local', path: subpath ? join(text, checkSubdir(subpath)) : text}
}

function checkSubdir(subdir: string): string {
  const clean = normalize(subdir).replace(/^[\\/]+|[\\/]+$/g, '')
  if (isAbsolute(subdir) || clean === '..' || clean.startsWith(`..${sep}`)) {
    throw new R1Error(`The template subdirectory "${subdir}" leaves the repository.`, ExitCode.USAGE, {code: 'TEMPLATE_REF_INVALID', hint: 'Give a path relative to the repository root.'})
  }
  return clean
}

export interface FetchOptions {
  cwd?: string
  signal?: AbortSignal
  /** Folder of the built-in templates (tests point it elsewhere). */
  builtinDir?: string
}

/** Locates (built-in, local) or clones (git) a template and reads its description. */
export async function fetchTemplate(ref: TemplateRef, options: FetchOptions = {}): Promise<FetchedTemplate> {
  const noop = async () => {}
  if (ref.kind === 'builtin') {
    const all = await listBuiltinTemplates(options.builtinDir)
    const found = all.find((t) => t.id === ref.id)
    if (!found) {
      // `--template my-template` with such a folder here means that folder.
      const local = resolve(options.cwd ?? process.cwd(), ref.id)
      if (await stat(local).then((s) => s.isDirectory(), () => false)) return fetchTemplate({kind: 'local', path: ref.id}, options)
      const ids = all.map((t) => t.id)
      const close = closest(ref.id, ids)
      throw new R1Error(`Unknown template "${ref.id}".${close ? ` Did you mean "${close}"?` : ''}`, ExitCode.USAGE, {
        code: 'TEMPLATE_UNKNOWN',
        hint: `Built-in templates: ${ids.join(', ')}. A local folder needs a path (./${ref.id}); a git repository needs its URL.`,
      })
    }
    return {label: ref.id, dir: found.dir, meta: await loadTemplateMeta(found.dir), cleanup: noop}
  }
  if (ref.kind === 'local') {
    const dir = resolve(options.cwd ?? process.cwd(), ref.path)
    const info = await stat(dir).catch(() => undefined)
    if (!info?.isDirectory()) {
      throw new R1Error(`Template folder ${dir} does not exist.`, ExitCode.USAGE, {code: 'TEMPLATE_UNKNOWN', hint: 'Give the path of a folder holding a config.yaml, a built-in id (`r1 templates`), or a git URL.'})
    }
    return {label: ref.path, dir, meta: await loadTemplateMeta(dir), cleanup: noop}
  }
  return cloneTemplate(ref, options)
}

async function cloneTemplate(ref: Extract<TemplateRef, {kind: 'git'}>, options: FetchOptions): Promise<FetchedTemplate> {
  const {execa} = await import('execa')
  const label = `${ref.url}${ref.ref ? `#${ref.ref}` : ''}${ref.subdir ? `:${ref.subdir}` : ''}`
  const temp = await mkdtemp(join(tmpdir(), 'r1-template-'))
  const cleanup = () => rm(temp, {recursive: true, force: true})
  const repo = join(temp, 'repo')
  // Never ask for credentials: a template fetch without a terminal must fail, not hang.
  const git = (args: string[]) =>
    execa('git', args, {
      env: {GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'echo', GCM_INTERACTIVE: 'never'},
      timeout: 180_000,
      stdin: 'ignore',
      ...(options.signal ? {cancelSignal: options.signal} : {}),
    })
  try {
    const sha = ref.ref !== undefined && /^[0-9a-f]{7,40}$/i.test(ref.ref)
    if (sha) {
      // A commit cannot be cloned by name: fetch the history, then check the commit out.
      await git(['clone', '--quiet', '--no-checkout', ref.url, repo])
      const commit = await git(['-C', repo, 'rev-parse', '--verify', '--quiet', `${ref.ref}^{commit}`]).catch(() => {
        throw Object.assign(new Error(`unknown revision ${ref.ref}`), {stderr: `fatal: unknown revision ${ref.ref}`})
      })
      await git(['-C', repo, 'checkout', '--quiet', '--detach', commit.stdout.trim()])
    } else {
      await git(['clone', '--quiet', '--depth', '1', ...(ref.ref ? ['--branch', ref.ref] : []), ref.url, repo])
    }
  } catch (error) {
    await cleanup()
    if (options.signal?.aborted) throw options.signal.reason
    const stderr = String((error as {stderr?: unknown}).stderr ?? (error as Error).message).trim()
    const reason = stderr.split('\n').filter(Boolean).slice(-2).join(' ') || (error as Error).message
    const missingRef = ref.ref && /remote branch \S+ not found|did not match|unknown revision|couldn't find remote ref|not a tree/i.test(stderr)
    throw new R1Error(`Could not fetch template ${label}: ${reason}`, ExitCode.FAILURE, {
      code: missingRef ? 'TEMPLATE_REF_NOT_FOUND' : 'TEMPLATE_UNREACHABLE',
      hint: missingRef ? `Check that "${ref.ref}" is a branch, tag or commit of ${ref.url}.` : 'Check the URL, your network and your access to the repository.',
    })
  }
  const dir = ref.subdir ? join(repo, ref.subdir) : repo
  const info = await stat(dir).catch(() => undefined)
  if (!info?.isDirectory()) {
    await cleanup()
    throw new R1Error(`Template ${label}: the repository has no folder "${ref.subdir}".`, ExitCode.USAGE, {code: 'TEMPLATE_UNKNOWN', hint: 'Check the subdirectory after ":" in the URL or in --path.'})
  }
  try {
    return {label, dir, meta: await loadTemplateMeta(dir), cleanup}
  } catch (error) {
    await cleanup()
    throw error
  }
}
