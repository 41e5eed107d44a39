import {readFileSync} from 'node:fs'
import {sep} from 'node:path'
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
 * How a generated project depends on r1: from the registry when this r1 was installed from it
 * (it lives inside a node_modules folder), else a `file:` link to this very checkout, so a
 * project made from a clean clone of the repository resolves `r1/plugin` without a registry.
 */
export function r1DependencySpec(root: string = R1_ROOT): string {
  const installed = root.split(/[\\/]/).includes('node_modules')
  return installed ? `^${r1Version(root)}` : `file:${root}`
}

/** Where a generated project's editor finds r1's JSON Schema for config.yaml. */
export const GENERATED_SCHEMA_PATH = 'node_modules/r1/dist/config.schema.json'
