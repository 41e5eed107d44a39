import {randomBytes} from 'node:crypto'
import {chmod, lstat, mkdir, readdir, readFile, readlink, realpath, rename, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {basename, dirname, isAbsolute, join, relative, resolve, sep} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {TEMPLATE_META_FILE, type TemplateMeta} from './template.js'

/** Values for a template's variables; each replaces the template's default text. */
export interface Variables {
  name: string
  signature?: string
  schemaPath?: string
  r1Dependency?: string
}

// Version control, installed packages, r1's local run state and the template's own description never travel.
const ALWAYS_EXCLUDED = new Set(['.git', 'node_modules', '.r1', TEMPLATE_META_FILE])

/** Pairs of (template text → project text) for the variables the template declares. */
export function substitutions(meta: TemplateMeta, values: Variables): Array<[string, string]> {
  const pairs: Array<[string, string]> = []
  for (const key of ['name', 'signature', 'schemaPath', 'r1Dependency'] as const) {
    const from = meta.variables[key]
    const to = values[key]
    if (from !== undefined && to !== undefined && from !== to) pairs.push([from, to])
  }
  return pairs
}

/** Replaces every variable's default text in one pass (longest first), so no replacement is replaced again. */
export function substitute(text: string, pairs: Array<[string, string]>): string {
  if (pairs.length === 0) return text
  const map = new Map(pairs)
  const pattern = new RegExp([...map.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g')
  return text.replace(pattern, (match) => map.get(match)!)
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Text files get their variables replaced; anything with a NUL byte or invalid UTF-8 is copied as is. */
function asText(bytes: Buffer): string | undefined {
  if (bytes.subarray(0, 8192).includes(0)) return undefined
  try {
    return new TextDecoder('utf-8', {fatal: true}).decode(bytes)
  } catch {
    return undefined
  }
}

/** Is `dir` missing or empty? */
export async function isEmptyDir(dir: string): Promise<boolean> {
  const entries = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return []
    if (error.code === 'ENOTDIR') return ['(a file)']
    throw error
  })
  return entries.length === 0
}

/** Fails unless `target` is missing or empty, or `force` allows writing into it. */
export async function checkTarget(target: string, force: boolean): Promise<void> {
  const info = await stat(target).catch(() => undefined)
  if (info && !info.isDirectory()) {
    throw new R1Error(`${target} exists and is not a directory.`, ExitCode.FAILURE, {code: 'TARGET_NOT_DIRECTORY', hint: 'Pick another directory for the project.'})
  }
  if (!force && !(await isEmptyDir(target))) {
    throw new R1Error(`Directory ${target} is not empty.`, ExitCode.FAILURE, {
      code: 'TARGET_NOT_EMPTY',
      hint: 'Pick an empty or new directory, or pass --force to write the template into it (files with the same names are replaced).',
    })
  }
}

export interface RenderOptions {
  /** The template folder. */
  source: string
  meta: TemplateMeta
  values: Variables
  /** The project folder (created when missing). */
  target: string
  /** Write into a non-empty target, replacing entries with the same names. */
  force?: boolean
  /** Called with the staged project (complete, not yet in place); throwing aborts and leaves nothing behind. */
  check?: (stagedDir: string) => Promise<void>
  /** Aborting stops the copy and removes the staging folder. */
  signal?: AbortSignal
}

/**
 * Renders a template into `target`: copies every file with the variables replaced into a staging folder
 * next to the target, then moves it into place, so a failure at any point leaves nothing half-written.
 * Returns the written files, relative to the target, sorted.
 */
export async function renderTemplate(options: RenderOptions): Promise<string[]> {
  const target = resolve(options.target)
  const source = resolve(options.source)
  if (target === source || target.startsWith(source + sep) || source.startsWith(target + sep)) {
    throw new R1Error(`The project folder ${target} and the template folder ${source} overlap.`, ExitCode.USAGE, {code: 'TARGET_IN_TEMPLATE', hint: 'Create the project outside the template folder.'})
  }
  await checkTarget(target, options.force ?? false)
  const pairs = substitutions(options.meta, options.values)
  const targetExists = await stat(target).then(() => true, () => false)
  // The staging folder sits on the target's file system so the final move is a rename.
  const createdParent = targetExists ? undefined : await mkdir(dirname(target), {recursive: true})
  const stagingParent = targetExists ? target : dirname(target)
  const staging = join(stagingParent, `.r1-init-${basename(target)}-${randomBytes(4).toString('hex')}`)
  const excluded = new Set([...ALWAYS_EXCLUDED, ...options.meta.exclude])
  const files: string[] = []
  try {
    await mkdir(staging)
    const roots = {source: await realpath(source), dest: await realpath(staging)}
    await copyTree(options.source, staging, '', {excluded, rename: options.meta.rename, pairs, files, signal: options.signal, roots})
    await options.check?.(staging)
    options.signal?.throwIfAborted()
    if (targetExists) {
      // Never replace the target folder itself (it may be the shell's working directory): move its new entries in.
      for (const entry of await readdir(staging)) {
        await rm(join(target, entry), {recursive: true, force: true})
        await rename(join(staging, entry), join(target, entry))
      }
      await rm(staging, {recursive: true, force: true})
    } else {
      await rename(staging, target)
    }
  } catch (error) {
    await rm(staging, {recursive: true, force: true})
    if (createdParent) await rm(createdParent, {recursive: true, force: true})
    throw error
  }
  return files.sort()
}

interface CopyState {
  excluded: Set<string>
  rename: Record<string, string>
  pairs: Array<[string, string]>
  files: string[]
  signal?: AbortSignal
  /** Real paths of the template and the staging folder: nothing is read from outside one or written outside the other. */
  roots: {source: string; dest: string}
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root + sep)
}

function outside(message: string): R1Error {
  return new R1Error(message, ExitCode.INVALID_CONFIG, {
    code: 'TEMPLATE_UNSAFE_PATH',
    hint: 'A template may only write inside the project: remove the symlink (or the `rename` that goes through it) from the template.',
  })
}

/** The real path of `path`'s deepest existing ancestor must lie in the project: no write follows a symlink out of it. */
async function checkWritable(destRoot: string, path: string, from: string): Promise<void> {
  let existing = dirname(path)
  for (;;) {
    const real = await realpath(existing).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(error)))
    if (real !== undefined) {
      if (!inside(destRoot, real)) throw outside(`Template file ${from} would be written outside the project (through a symlink to ${real}).`)
      return
    }
    existing = dirname(existing)
  }
}

/** A template symlink is copied only when it points inside the template (relative, resolved from where it sits). */
async function checkSymlink(state: CopyState, sourcePath: string, from: string): Promise<string> {
  const link = await readlink(sourcePath)
  const resolved = isAbsolute(link) ? link : resolve(dirname(join(state.roots.source, from)), link)
  const real = await realpath(resolved).catch(() => resolved)
  if (isAbsolute(link) || !inside(state.roots.source, real)) {
    throw outside(`Template symlink ${from} points outside the template (${link}): r1 init never follows a template out of itself.`)
  }
  return link
}

async function copyTree(sourceRoot: string, destRoot: string, rel: string, state: CopyState): Promise<void> {
  const entries = await readdir(join(sourceRoot, rel), {withFileTypes: true})
  for (const entry of entries) {
    state.signal?.throwIfAborted()
    const from = rel ? `${rel}/${entry.name}` : entry.name
    if (rel === '' && state.excluded.has(entry.name)) continue
    if (entry.name === '.git' || entry.name === 'node_modules') continue
    const renamed = state.rename[from] ?? from
    const to = substitute(renamed, state.pairs)
    const destPath = join(destRoot, ...to.split('/'))
    if (!resolve(destPath).startsWith(resolve(destRoot) + sep)) {
      throw outside(`Template file ${from} would be written outside the project (${to}).`)
    }
    const sourcePath = join(sourceRoot, from)
    if (entry.isDirectory() || entry.isSymbolicLink() || entry.isFile()) await checkWritable(state.roots.dest, destPath, from)
    if (entry.isDirectory()) {
      await mkdir(destPath, {recursive: true})
      await copyTree(sourceRoot, destRoot, from, state)
    } else if (entry.isSymbolicLink()) {
      const link = await checkSymlink(state, sourcePath, from)
      await mkdir(dirname(destPath), {recursive: true})
      await symlink(link, destPath)
      state.files.push(relative(destRoot, destPath).split(sep).join('/'))
    } else if (entry.isFile()) {
      await mkdir(dirname(destPath), {recursive: true})
      const bytes = await readFile(sourcePath)
      const text = asText(bytes)
      await writeFile(destPath, text === undefined ? bytes : substitute(text, state.pairs), {flag: 'wx'})
      await chmod(destPath, (await lstat(sourcePath)).mode & 0o777)
      state.files.push(relative(destRoot, destPath).split(sep).join('/'))
    }
  }
}
