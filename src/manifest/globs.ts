import {readdirSync} from 'node:fs'
import {join, posix} from 'node:path'

/**
 * The `files:` globs of config.yaml: `*` (any characters but `/`), `**` (any folders, also none),
 * `?` (one character but `/`); a glob naming a folder takes everything under it. Paths are relative
 * to the project and use `/`.
 */

/** Folders never shipped: dependencies, version control, r1's own project state. */
const SKIPPED = new Set(['node_modules', '.git', '.r1'])

/** Why a glob is unusable (absolute, or leaving the project), or undefined. */
export function globProblem(glob: string): string | undefined {
  if (glob.startsWith('/') || /^[A-Za-z]:[\\/]/.test(glob)) return `"${glob}" is absolute; files globs are relative to config.yaml`
  if (glob.split(/[\\/]/).includes('..')) return `"${glob}" leaves the project folder`
  return undefined
}

export function globToRegExp(glob: string): RegExp {
  const parts = posix.normalize(glob.replaceAll('\\', '/')).replace(/^\.\//, '').replace(/\/$/, '')
  let source = ''
  for (let i = 0; i < parts.length; i++) {
    const char = parts[i]!
    if (char === '*' && parts[i + 1] === '*') {
      const slash = parts[i + 2] === '/'
      source += slash ? '(?:.*/)?' : '.*'
      i += slash ? 2 : 1
    } else if (char === '*') source += '[^/]*'
    else if (char === '?') source += '[^/]'
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  // a folder's name takes everything under it
  return new RegExp(`^${source}(?:/.*)?$`)
}

/** A predicate true for the project-relative paths that any of `globs` takes. */
export function fileMatcher(globs: readonly string[]): (path: string) => boolean {
  const patterns = globs.map(globToRegExp)
  return (path) => patterns.some((pattern) => pattern.test(path))
}

/** Every regular file under `dir` (project-relative, `/`-separated, sorted), without node_modules, .git and .r1. */
export function projectFiles(dir: string): string[] {
  const out: string[] = []
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(dir, relative), {withFileTypes: true})) {
      const path = relative ? `${relative}/${entry.name}` : entry.name
      if (entry.isDirectory()) {
        if (!SKIPPED.has(entry.name)) walk(path)
      } else if (entry.isFile()) out.push(path)
    }
  }
  walk('')
  return out.sort()
}

/** The project's files that `globs` take (sorted). */
export function matchFiles(dir: string, globs: readonly string[]): string[] {
  const matches = fileMatcher(globs)
  return projectFiles(dir).filter(matches)
}
