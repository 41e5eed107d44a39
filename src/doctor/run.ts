import {resolve} from 'node:path'
import type {BrokerSelection} from '../deploy/discover.js'
import {readCa} from '../deploy/link.js'
import {projectTargets, selectTargets} from '../deploy/project.js'
import {type Target, resolveTargets} from '../deploy/targets.js'
import {ExitCode, type R1Error, exitCodeOf} from '../errors.js'
import {concurrencyFor, pool} from '../fleet/engine.js'
import {type ValidationResult, validateProject} from '../manifest/validate.js'
import {cliKeyPath, readIdentity} from '../protocol/identity.js'
import {type CheckResult, type DoctorReport, doctorReport} from './checks.js'
import {keyFileCheck, nodeVersionCheck, projectCheck} from './local.js'
import {checkNode} from './target.js'

export interface DoctorOptions {
  /** Project folder (its config.yaml names the targets). */
  dir: string
  /** The target flags; no flag means every target of the project (with --broker: every node heard on it). */
  selection: BrokerSelection
  /** --ca: trusted for every wss:// node (else each target's own `ca`). */
  caFile?: string
  connectTimeoutMs: number
  maxConcurrent?: number
  /** Warnings fail the run too. */
  strict?: boolean
  /** The CLI key (default: R1_CONFIG_DIR or the XDG config dir). */
  keyPath?: string
}

/**
 * `r1 doctor`: this machine (Node, the CLI key), the project (a validate pass), then every selected
 * node at once (reachability, TLS, address, clock, allow-list). Never throws for what it finds; a
 * usage error (bad flags, an unknown target) still throws.
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const keyPath = options.keyPath ?? cliKeyPath()
  const checks: CheckResult[] = [nodeVersionCheck(), await keyFileCheck(keyPath)]
  // a key others can read still signs: the allow-list check uses it (key-file reports the mode)
  const identity = await readIdentity(keyPath).catch(() => undefined)

  let validation: ValidationResult | undefined
  try {
    validation = await validateProject(options.dir)
    checks.push(projectCheck(validation, options.dir))
  } catch (error) {
    const failed = error as R1Error
    checks.push(failed.code === 'MANIFEST_NOT_FOUND' ? projectCheck(undefined, resolve(options.dir)) : {id: 'project', status: 'fail', message: failed.message, hint: failed.hint})
  }

  let targets: Target[] = []
  if (options.selection.broker === undefined) targets = configuredTargets(validation, options.selection)
  else {
    try {
      targets = await selectTargets(options.dir, {...options.selection, everyTargetByDefault: true}, {connectTimeoutMs: options.connectTimeoutMs})
    } catch (error) {
      // no node heard, a broker that cannot be reached: a finding; a bad flag still throws
      if (exitCodeOf(error) === ExitCode.USAGE) throw error
      const failed = error as R1Error
      checks.push({id: 'reachable', status: 'fail', target: options.selection.broker, message: failed.message, hint: failed.hint, details: {code: failed.code}})
    }
  }
  const shared = options.caFile ? await readCa(options.caFile) : undefined
  const perTarget = await pool(targets, concurrencyFor(targets, options.maxConcurrent), async (target) =>
    checkNode(target, {identity, ca: shared ?? (target.ca ? await readCa(target.ca) : undefined), connectTimeoutMs: options.connectTimeoutMs}),
  )
  return doctorReport([...checks, ...perTarget.flat()], options.strict)
}

/** The nodes to check: as every fleet command selects them, but no target at all is fine (the local checks still run). */
function configuredTargets(validation: ValidationResult | undefined, selection: BrokerSelection): Target[] {
  const manifest = validation?.manifest
  // config.yaml has errors (the project check says which): its targets cannot be trusted, ad hoc nodes still can
  if (validation && !manifest) return selection.node?.length ? resolveTargets(undefined, {node: selection.node, address: selection.address}) : []
  const configured = manifest ? projectTargets(manifest, validation.dir) : undefined
  const flagged = Boolean(selection.all || selection.target?.length || selection.node?.length || selection.tag?.length || selection.env !== undefined)
  if (!flagged && Object.keys(configured ?? {}).length === 0) return []
  return resolveTargets(configured, {...selection, everyTargetByDefault: true}, manifest?.environments)
}
