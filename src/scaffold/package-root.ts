import {readFileSync} from 'node:fs'
import {relative, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The root of the r1 package that is running (this file is src/scaffold/ or dist/scaffold/). */
export const R1_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/[\\/]$/, '')

/** Where the built-in templates live. */
export const BUILTIN_TEMPLATES_DIR = `${R1_ROOT}${sep}templates`

/** The running r1's version, from its package.json. */
export function r1Version(root: string = R1_ROOT): string {
  return (JSON.parse(readFileSync(`${root}${sep}package.json`, 'utf8')) as {version: string}).version
}

/**
 * How a generated project depends on r1. Installed from a registry or a tarball (this r1 lives in a
 * node_modules folder): the semver range of this version. Run from a clone: a `file:` path
 * relative to the project (`file:../r1`), never an absolute one, so the project works for anyone
 * with the same layout; an r1 developer can also `npm link r1` in the project.
 */
export function r1DependencySpec(root: string = R1_ROOT, projectDir?: string): string {
  const installed = root.split(/[\\/]/).includes('node_modules')
  if (installed || projectDir === undefined) return `^${r1Version(root)}`
  const path = relative(projectDir, root).split(sep).join('/')
  return `file:${path === '' ? '.' : path}`
}

/** Where a generated project's editor finds r1's JSON Schema for config.yaml. */
export const GENERATED_SCHEMA_PATH = 'node_modules/r1/dist/config.schema.json'
