import {stat} from 'node:fs/promises'
import {createRequire} from 'node:module'
import type {ValidationResult} from '../manifest/validate.js'
import {readIdentity} from '../protocol/identity.js'
import type {CheckResult} from './checks.js'

/** The checks of this machine and project: Node, the CLI key file, config.yaml. */

const engines = (createRequire(import.meta.url)('../../package.json') as {engines: {node: string}}).engines.node

/** `node-version`: the running Node against package.json `engines` (`>=20.12`). */
export function nodeVersionCheck(version = process.versions.node, range = engines): CheckResult {
  const minimum = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(range.trim())?.[1]
  if (!minimum) return {id: 'node-version', status: 'warn', message: `Node ${version}; cannot read the required range "${range}"`, hint: 'Reinstall r1: its package.json is damaged.', details: {version, required: range}}
  const parts = (v: string) => v.split('.').map(Number)
  const [have, need] = [parts(version), parts(minimum)]
  const difference = [0, 1, 2].map((i) => (have[i] ?? 0) - (need[i] ?? 0)).find((d) => d !== 0) ?? 0
  return difference < 0
    ? {id: 'node-version', status: 'fail', message: `Node ${version} is older than r1 needs (${range})`, hint: `Install Node ${minimum} or newer (e.g. the current LTS from nodejs.org, or \`nvm install --lts\`).`, details: {version, required: range}}
    : {id: 'node-version', status: 'ok', message: `Node ${version} (r1 needs ${range})`, details: {version, required: range}}
}

/**
 * `key-file`: the CLI identity key exists, parses, and only its owner can read it (0600): anyone who
 * reads it can send commands as you to every node that allows your address.
 */
export async function keyFileCheck(path: string): Promise<CheckResult> {
  let mode: number
  try {
    mode = (await stat(path)).mode & 0o777
  } catch {
    return {id: 'key-file', status: 'fail', message: `no CLI key at ${path}`, hint: 'Create one with `r1 keys generate` (then allow its address on your nodes: `r1 node allow <address>`).', details: {path}}
  }
  const octal = mode.toString(8).padStart(4, '0')
  let address: string | undefined
  try {
    address = (await readIdentity(path))?.address
  } catch (error) {
    return {id: 'key-file', status: 'fail', message: `the CLI key ${path} is unreadable: ${(error as Error).message}`, hint: 'Restore it from a backup, or replace it with `r1 keys generate --force` (nodes that allowed the old address must allow the new one).', details: {path, mode: octal}}
  }
  if ((mode & 0o077) !== 0) {
    return {id: 'key-file', status: 'fail', message: `the CLI key ${path} has mode ${octal}: other users can read it and sign commands as ${address}`, hint: `chmod 600 ${path}`, details: {path, mode: octal, address}}
  }
  return {id: 'key-file', status: 'ok', message: `${path}: mode ${octal}, address ${address}`, details: {path, mode: octal, address}}
}

/** `project`: a validate pass over config.yaml (errors fail, warnings warn); undefined result: no project here. */
export function projectCheck(result: ValidationResult | undefined, dir: string): CheckResult {
  if (!result) return {id: 'project', status: 'skip', message: `no config.yaml in ${dir}`, hint: 'Run from a project folder or pass --dir <project> to check it and its targets.'}
  const errors = result.diagnostics.filter((d) => d.severity === 'error')
  const warnings = result.diagnostics.filter((d) => d.severity === 'warning')
  const details = {file: result.file, errors: errors.length, warnings: warnings.length}
  const first = (d: (typeof result.diagnostics)[number]) => `${d.file}:${d.line}:${d.col} ${d.message} [${d.rule}]`
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`
  if (errors.length > 0) {
    return {id: 'project', status: 'fail', message: `${count(errors.length, 'error')} in config.yaml; first: ${first(errors[0]!)}`, hint: `Run \`r1 validate ${result.dir}\` for every diagnostic and its fix.`, details}
  }
  if (warnings.length > 0) {
    return {id: 'project', status: 'warn', message: `config.yaml is valid, with ${count(warnings.length, 'warning')}; first: ${first(warnings[0]!)}`, hint: `Run \`r1 validate ${result.dir}\` for details.`, details}
  }
  return {id: 'project', status: 'ok', message: `${result.file} is valid`, details}
}
