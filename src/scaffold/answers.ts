import {basename, resolve} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {missingAnswer} from '../ui/prompts.js'
import {projectNameProblem, signatureProblem, toKebabCase, toUpperSnakeCase} from './names.js'
import type {Asker} from './prompts.js'
import {isEmptyDir} from './render.js'
import {detectPackageManager, installedPackageManagers, type PackageManager} from './setup.js'
import {listBuiltinTemplates, type TemplateMeta} from './template.js'

export const DEFAULT_TEMPLATE = 'ts-plugin'

/** What `r1 init` was told by flags; anything missing is asked (on a terminal), defaulted (`--yes`) or an error. */
export interface InitFlags {
  template?: string
  name?: string
  signature?: string
  packageManager?: PackageManager
  install?: boolean
  git?: boolean
  yes?: boolean
}

export interface InitAnswers {
  name: string
  /** Absent when the template has no plugin of its own. */
  signature?: string
  packageManager: PackageManager
  install: boolean
  git: boolean
  /** Flags that did not apply to this template. */
  warnings: string[]
}

/** A flag that answers one question, as the missing-answers error lists it. */
const FLAG_OF = {
  template: '--template <id|path|git URL>',
  name: '--name <kebab-case>',
  signature: '--signature <UPPER_SNAKE>',
  install: '--install or --no-install',
  packageManager: '--package-manager <npm|pnpm|yarn>',
  git: '--git or --no-git',
} as const

/**
 * Without a terminal nothing is asked: every missing answer is listed at once (not one per run).
 * `hasPlugin` undefined means the template is not known yet (so --signature may be needed).
 */
export function missingFlags(flags: InitFlags, options: {dir?: string; hasPlugin?: boolean}): string[] {
  if (flags.yes) return []
  const missing: string[] = []
  if (flags.template === undefined) missing.push(FLAG_OF.template)
  // a folder argument names the project
  if (flags.name === undefined && options.dir === undefined) missing.push(FLAG_OF.name)
  if (flags.signature === undefined && options.hasPlugin !== false) missing.push(FLAG_OF.signature + (options.hasPlugin === undefined ? ' (templates with a plugin)' : ''))
  if (flags.install === undefined) missing.push(FLAG_OF.install)
  if (flags.install !== false && flags.packageManager === undefined) missing.push(FLAG_OF.packageManager)
  if (flags.git === undefined) missing.push(FLAG_OF.git)
  return missing
}

/** The usage error naming every missing flag. */
export function missingAnswers(missing: string[]): R1Error {
  return new R1Error(`Missing answer${missing.length === 1 ? '' : 's'} (no prompt without a terminal): pass ${missing.join(', ')}.`, ExitCode.USAGE, {
    code: 'MISSING_FLAG',
    hint: 'Or pass --yes to take the default for every one of them.',
    details: {missing},
  })
}

/** The template to use: the flag, the default under `--yes`, or a choice among the built-in ones. */
export async function chooseTemplate(flags: InitFlags, asker: Asker | undefined, builtinDir?: string, dir?: string): Promise<string> {
  if (flags.template) return flags.template
  if (flags.yes) return DEFAULT_TEMPLATE
  if (!asker) throw missingAnswers(missingFlags(flags, {dir}))
  const templates = await listBuiltinTemplates(builtinDir)
  return asker.select(
    'Template',
    templates.map((t) => ({name: t.id, value: t.id, description: t.description})),
    templates.some((t) => t.id === DEFAULT_TEMPLATE) ? DEFAULT_TEMPLATE : undefined,
  )
}

function invalid(problem: string, flag: string, example: string): R1Error {
  return new R1Error(`Invalid ${flag}: ${problem}.`, ExitCode.USAGE, {code: 'NAME_INVALID', hint: `For example ${flag} ${example}.`})
}

/** Checks names given as flags before anything is fetched or asked. */
export function checkNameFlags(flags: InitFlags): void {
  const nameProblem = flags.name === undefined ? undefined : projectNameProblem(flags.name)
  if (nameProblem) throw invalid(nameProblem, '--name', 'sensor-watch')
  const signatureProblemText = flags.signature === undefined ? undefined : signatureProblem(flags.signature)
  if (signatureProblemText) throw invalid(signatureProblemText, '--signature', 'TEMP_MONITOR')
}

/** The default project name: the target folder's name when it makes a valid one, else the template's. */
export function defaultProjectName(meta: TemplateMeta, dir?: string): string {
  if (dir) {
    const base = basename(resolve(dir))
    if (!projectNameProblem(base)) return base
    const kebab = toKebabCase(base)
    if (kebab && !projectNameProblem(kebab)) return kebab
  }
  return meta.variables.name
}

/**
 * The signature defaults to the project name in UPPER_SNAKE when the template's own defaults are so
 * related (`my-plugin` / `MY_PLUGIN`), else to the template's signature.
 */
export function defaultSignature(meta: TemplateMeta, name: string): string | undefined {
  const own = meta.variables.signature
  if (own === undefined) return undefined
  return own === toUpperSnakeCase(meta.variables.name) ? toUpperSnakeCase(name) : own
}

/** Resolves every answer from flags, `--yes` defaults or prompts; without a prompt a missing answer names its flag. */
export async function resolveAnswers(
  flags: InitFlags,
  meta: TemplateMeta,
  asker: Asker | undefined,
  dir?: string,
  force = false,
  installed: PackageManager[] = installedPackageManagers(),
): Promise<InitAnswers> {
  checkNameFlags(flags)
  const warnings: string[] = []
  if (!asker) {
    const missing = missingFlags({...flags, template: flags.template ?? 'chosen'}, {dir, hasPlugin: meta.variables.signature !== undefined})
    if (missing.length > 0) throw missingAnswers(missing)
  }
  const ask = async <T>(given: T | undefined, fallback: T, what: string, flag: string, prompt: () => Promise<T>): Promise<T> => {
    if (given !== undefined) return given
    if (flags.yes) return fallback
    if (!asker) throw missingAnswer(what, flag)
    return prompt()
  }

  const nameDefault = defaultProjectName(meta, dir)
  // A folder argument names the project: asked on a terminal (with it as the default), taken as is without one.
  // Without a folder argument the project goes to ./<name>: re-ask while that folder is taken.
  const nameOrFolderProblem = async (value: string) =>
    projectNameProblem(value) ?? (dir === undefined && !force && !(await isEmptyDir(resolve(value))) ? `folder ./${value} exists and is not empty (or pass --force)` : undefined)
  const name = await ask(flags.name ?? (asker ? undefined : dir === undefined ? undefined : nameDefault), nameDefault, 'project name', '--name', () =>
    asker!.input('Project name (kebab-case)', nameDefault, nameOrFolderProblem))

  let signature: string | undefined
  const signatureDefault = defaultSignature(meta, name)
  if (signatureDefault === undefined) {
    if (flags.signature !== undefined) warnings.push(`--signature ${flags.signature} ignored: this template has no plugin of its own.`)
  } else {
    signature = await ask(flags.signature, signatureDefault, 'plugin signature', '--signature', () =>
      asker!.input('Signature of the first plugin (UPPER_SNAKE)', signatureDefault, signatureProblem))
  }

  const install = await ask(flags.install, true, 'answer to "install dependencies?"', '--install or --no-install', () =>
    asker!.confirm('Install dependencies?', true))
  // only package managers that are installed are offered (npm when none is found)
  const offered = installed.length > 0 ? installed : (['npm'] as PackageManager[])
  const launched = detectPackageManager()
  const detected = offered.includes(launched) ? launched : offered[0]
  const packageManager = install
    ? await ask(flags.packageManager, detected, 'package manager', '--package-manager', async () =>
      offered.length === 1 ? offered[0] : asker!.select('Package manager', offered.map((pm) => ({name: pm, value: pm})), detected))
    : flags.packageManager ?? detected
  const git = await ask(flags.git, true, 'answer to "initialize a git repository?"', '--git or --no-git', () =>
    asker!.confirm('Initialize a git repository?', true))
  return {name, ...(signature === undefined ? {} : {signature}), packageManager, install, git, warnings}
}
