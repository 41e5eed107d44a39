import {openProject} from '../deploy/project.js'
import {type TargetMap, resolveTargets} from '../deploy/targets.js'
import {ExitCode, R1Error} from '../errors.js'
import {closest} from '../manifest/diagnostics.js'
import {type SecretEntry, type SecretTarget, listSecrets, readSecrets, removeSecret, secretsPath} from './store.js'

/** A project's folder and the targets of its config.yaml (name → node address). */
export interface SecretsProject {
  dir: string
  addresses: Record<string, string>
}

export async function openSecretsProject(dir: string): Promise<SecretsProject> {
  const project = await openProject(dir)
  return {dir: project.dir, addresses: addressesOf(project.targets)}
}

function addressesOf(targets: TargetMap): Record<string, string> {
  return Object.fromEntries(Object.entries(targets).map(([name, t]) => [name, t.address]))
}

/**
 * The one target a secret is set for: `--target`, or the only target of config.yaml. Several
 * targets and no flag is a usage error that lists them.
 */
export async function secretTarget(dir: string, target: string | undefined): Promise<{project: SecretsProject; target: SecretTarget}> {
  const project = await openProject(dir)
  const names = Object.keys(project.targets)
  if (target === undefined && names.length > 1) {
    throw new R1Error(`Several targets are configured (${names.join(', ')}): a secret belongs to one, choose it with --target <name>.`, ExitCode.USAGE, {
      code: 'BAD_TARGET',
      hint: `e.g. --target ${names[0]}; each target's node gets its own copy, sealed to its key.`,
    })
  }
  if (names.length === 0) {
    throw new R1Error('config.yaml has no `targets`: a secret is sealed to a target node and needs one.', ExitCode.USAGE, {
      code: 'NO_TARGET',
      hint: 'Add a target (url and address of its node) under `targets:` in config.yaml; `r1 node start` prints a node address.',
    })
  }
  const [resolved] = resolveTargets(project.targets, {target: target === undefined ? undefined : [target]})
  return {
    project: {dir: project.dir, addresses: addressesOf(project.targets)},
    target: {name: resolved.name, address: resolved.address},
  }
}

export interface SecretsList {
  /** The store file (it may not exist yet). */
  file: string
  secrets: SecretEntry[]
}

/** Every stored secret of the project, or of one target (known to config.yaml or still in the store). */
export async function listProjectSecrets(dir: string, target?: string): Promise<SecretsList> {
  const project = await openSecretsProject(dir)
  const store = await readSecrets(project.dir)
  if (target !== undefined && !Object.hasOwn(project.addresses, target) && !Object.hasOwn(store.targets, target)) {
    const known = [...new Set([...Object.keys(project.addresses), ...Object.keys(store.targets)])]
    const guess = closest(target, known)
    throw new R1Error(`Unknown target "${target}".${guess ? ` Did you mean "${guess}"?` : ''}`, ExitCode.USAGE, {
      code: 'UNKNOWN_TARGET',
      hint: known.length > 0 ? `Known targets: ${known.join(', ')}.` : 'config.yaml defines no targets.',
    })
  }
  return {file: secretsPath(project.dir), secrets: listSecrets(store, project.addresses, target === undefined ? undefined : [target])}
}

/**
 * Removes a secret of a target (a target dropped from config.yaml may still be named). Absent: exit 1.
 * With no --target, the only target holding that name.
 */
export async function removeProjectSecret(dir: string, name: string, target: string | undefined): Promise<{name: string; target: string}> {
  const project = await openSecretsProject(dir)
  const store = await readSecrets(project.dir)
  const holders = Object.keys(store.targets).filter((t) => Object.hasOwn(store.targets[t].secrets, name))
  let chosen = target
  if (chosen === undefined) {
    if (holders.length > 1) {
      throw new R1Error(`${name} is set for several targets (${holders.join(', ')}): choose one with --target <name>.`, ExitCode.USAGE, {
        code: 'BAD_TARGET',
        hint: `e.g. r1 secrets rm ${name} --target ${holders[0]}`,
      })
    }
    chosen = holders[0]
  }
  if (chosen === undefined || !(await removeSecret(project.dir, chosen, name))) {
    throw new R1Error(`No secret ${name}${chosen === undefined ? '' : ` for target ${chosen}`}: nothing was removed.`, ExitCode.FAILURE, {
      code: 'SECRET_NOT_FOUND',
      hint: '`r1 secrets ls` lists the secrets that are set.',
    })
  }
  return {name, target: chosen}
}
