import {ExitCode, R1Error} from '../errors.js'
import {NotificationCode} from '../protocol/codes.js'
import {COMMAND_LIMITS, commandLimitProblem} from '../protocol/limits.js'
import {BUNDLE_CHUNK_BYTES, FEATURE_INLINE_BUNDLES} from '../protocol/messages.js'
import {bundleMap, type PipelineConfig} from '../protocol/pipeline.js'
import {secretNames} from '../protocol/secret-refs.js'
import {bundleChunkBase64} from '../session/index.js'
import {type SecretsFile, sealedFor} from '../secrets/store.js'
import type {Expectation} from '../fleet/confirm.js'
import {type ConfirmedCommand, type Connect, type NodeLink, DIRECT_CONCURRENCY, concurrencyFor, limiter, pool, sendAndConfirm, verdictError} from '../fleet/engine.js'
import {type NodeOutcome, type TargetStatus, exitCodeFor, hintOfError, isFailure, statusOfError} from '../fleet/result.js'
import {type PipelinePlan, type TargetPlan, planTarget} from './plan.js'
import type {Target} from './targets.js'
import {formatBytes} from '../ui/bytes.js'

/**
 * `r1 deploy` per target: connect (the session verifies the node's address) → read its state →
 * plan → upload only the bundles it lacks → UPDATE_CONFIG / BATCH_UPDATE_PIPELINE_INSTANCE →
 * wait for PIPELINE_OK and PLUGIN_CONFIG_OK of every new or changed instance. A pipeline that loads
 * a bundle the node lacks (lost, or found corrupt and removed) is sent again even when its config is
 * unchanged: the bundle is uploaded again and the instances that load it restart. With `atomic`,
 * every target is first connected and its state read, and nothing is applied anywhere unless all
 * of them answered; targets that took the new version are put back as they were when any target
 * fails after that.
 */

export type DeployStep = 'queued' | 'connecting' | 'planning' | 'uploading' | 'applying' | 'confirming' | 'rolling back'

export interface DeployOptions {
  targets: Target[]
  /**
   * The compiled pipelines to deploy and their bundle bytes by sha256, built once for every target.
   * May be a promise: targets connect and read their state while the bundles build.
   */
  project: DeployProject | Promise<DeployProject>
  connect: Connect
  maxConcurrent?: number
  waitTimeoutMs?: number
  dryRun?: boolean
  atomic?: boolean
  /** Why (`--message`): the nodes keep it with the version each command creates (R1_MESSAGE), not in the config. */
  message?: string
  /** Upload attempts per bundle when the connection drops (default 4). */
  uploadAttempts?: number
  onStep?: (target: Target, step: DeployStep, detail?: string) => void
  /** A target ended (again, after a rollback): its status and error are final. */
  onDone?: (target: Target, result: TargetResult) => void
  /** A target is about to be sent its commands (`applied` set, link open): a rollout starts watching its health here. */
  onApplying?: (attempt: Attempt) => void
  /** Each link also streams its node's heartbeats (a rollout's health watch reads them). */
  heartbeats?: boolean
  signal?: AbortSignal
  /** The project's secret store (`.r1/secrets.json`): each target gets the values its pipelines refer to, sealed to its key. */
  secrets?: SecretsFile
}

export interface DeployProject {
  pipelines: PipelineConfig[]
  bundles: ReadonlyMap<string, Uint8Array>
}

export interface Timings {
  connect?: number
  upload?: number
  apply?: number
  confirm?: number
  total: number
}

/** One node's outcome of a deploy. */
export interface TargetResult extends NodeOutcome {
  /** Bundles uploaded to this node (the ones it lacked). */
  uploaded: string[]
  timings: Timings
  plan?: TargetPlan
  /** Secret names sent (or, with --dry-run, to send) per pipeline, encrypted to the node: names only, never values. */
  secrets?: Record<string, string[]>
  /** With --atomic: how the rollback of this target went. */
  rollback?: {ok: boolean; error?: string}
}

export interface DeployResult {
  ok: boolean
  exitCode: ExitCode
  targets: TargetResult[]
}

/** One target's deploy: its result so far, its open link, and what was sent (what a rollback undoes). */
export interface Attempt {
  target: Target
  result: TargetResult
  /** Connected, state read and planned: ready to apply. */
  ready?: boolean
  startedAt: number
  link?: NodeLink
  /** Pipelines whose command was sent: what --atomic undoes. */
  applied: PipelinePlan[]
  /** The link reported the connection lost (a rollback opens a new one). */
  lost?: boolean
  /** Bundles the node lacked when its state was read. */
  missing?: string[]
  /** Pipelines the node ran before this deploy → their version: what a rollback restores (R1_ROLLBACK). */
  runningBefore?: Map<string, number | undefined>
  /** Pipelines the node had archived (stopped, kept for rollback) before this deploy → their version. */
  archivedBefore?: Map<string, number | undefined>
  /** The secrets each pipeline refers to, sealed to this target's node. */
  secretSets?: Array<{name: string; sealed: ReturnType<typeof sealedFor>}>
}

export async function deploy(options: DeployOptions): Promise<DeployResult> {
  const waitTimeoutMs = options.waitTimeoutMs ?? 60_000
  const project = Promise.resolve(options.project)
  project.catch(() => undefined) // awaited below; a build error ends the whole deploy
  const limit = concurrencyFor(options.targets, options.maxConcurrent)
  let attempts: Attempt[]
  if (options.atomic && !options.dryRun) {
    // every target must answer before anything is applied anywhere: a node that is down costs nothing
    const prepared = await prepareTargets(options.targets, options)
    const unready = prepared.filter((a) => !a.ready && isFailure(a.result.status))
    if (unready.length > 0) {
      await closeAttempts(prepared)
      const names = unready.map((a) => a.target.name).join(', ')
      for (const a of prepared.filter((p) => !unready.includes(p))) Object.assign(a.result, skippedResult(`not applied: ${names} could not be reached or read (--atomic applies only when every target can)`))
      for (const a of prepared) options.onDone?.(a.target, a.result)
      const targets = prepared.map((a) => a.result)
      return {ok: false, exitCode: exitCodeFor(targets), targets}
    }
    let failedOnce = false
    attempts = await pool(prepared, limit, async (attempt) => {
      if (failedOnce) {
        Object.assign(attempt.result, skippedResult('not attempted: another target failed (--atomic)'))
        return attempt
      }
      await deployTarget(attempt, options, project, waitTimeoutMs, 'apply')
      if (!attempt.result.ok) failedOnce = true
      return attempt
    })
  } else {
    attempts = await deployOpen(options.targets, options)
  }

  if (options.atomic && attempts.some((a) => !a.result.ok)) {
    await pool(
      // A rejected command changed nothing; everything else that was sent is undone.
      attempts.filter((a) => a.applied.length > 0 && a.result.status !== 'rejected'),
      limit,
      (a) => rollBack(a, options, waitTimeoutMs),
    )
  }
  await closeAttempts(attempts)
  const targets = attempts.map((a) => a.result)
  const exitCode = exitCodeFor(targets)
  return {ok: exitCode === ExitCode.OK, exitCode, targets}
}

/**
 * Deploys to `targets` and leaves each connection open, still receiving the node's notifications and
 * heartbeats: a rollout's wave is soaked (and maybe rolled back) before its links close (`closeAttempts`).
 */
export async function deployOpen(targets: Target[], options: DeployOptions): Promise<Attempt[]> {
  const project = Promise.resolve(options.project)
  project.catch(() => undefined) // awaited below; a build error ends the whole deploy
  const attempts = await pool(targets, concurrencyFor(targets, options.maxConcurrent), async (target) => {
    const attempt = await deployTarget(newAttempt(target), options, project, options.waitTimeoutMs ?? 60_000, 'all')
    // Nothing comes back to this target: its session ends now, not after the slowest target (no keepalive probes and held state meanwhile)
    await attempt.link?.close().catch(() => undefined)
    return attempt
  })
  try {
    await project
  } catch (error) {
    // Nothing was applied anywhere: the build failed before any plan.
    await closeAttempts(attempts)
    throw error
  }
  return attempts
}

/**
 * Connects to every target, reads its state and plans, leaving each link open and each target `ready`
 * (or failed, with why): what `--atomic` checks first, and what a rollout does for every target before
 * its first wave, so that a wave only applies (`applyPrepared`).
 */
export async function prepareTargets(targets: Target[], options: DeployOptions): Promise<Attempt[]> {
  const project = Promise.resolve(options.project)
  project.catch(() => undefined) // awaited below; a build error ends the whole deploy
  const prepared = await pool(targets, concurrencyFor(targets, options.maxConcurrent), (target) => deployTarget(newAttempt(target), options, project, options.waitTimeoutMs ?? 60_000, 'prepare'))
  try {
    await project
  } catch (error) {
    await closeAttempts(prepared)
    throw error
  }
  return prepared
}

/** Uploads, applies and confirms on prepared targets that are ready; the others keep their failure. */
export async function applyPrepared(attempts: Attempt[], options: DeployOptions): Promise<Attempt[]> {
  const project = Promise.resolve(options.project)
  return pool(attempts, concurrencyFor(attempts.map((a) => a.target), options.maxConcurrent), (attempt) => (attempt.ready ? deployTarget(attempt, options, project, options.waitTimeoutMs ?? 60_000, 'apply') : Promise.resolve(attempt)))
}

export async function closeAttempts(attempts: readonly Attempt[]): Promise<void> {
  await Promise.all(attempts.map((a) => a.link?.close().catch(() => undefined)))
}

function newAttempt(target: Target): Attempt {
  const result: TargetResult = {target: target.name, url: target.url, address: target.address, ok: false, status: 'failed', uploaded: [], timings: {total: 0}}
  return {target, result, startedAt: performance.now(), applied: []}
}

function skippedResult(error: string): Pick<TargetResult, 'ok' | 'status' | 'error'> {
  return {ok: false, status: 'skipped', error}
}

/**
 * One target's deploy, in phases: `prepare` connects, reads the state and plans (the target is then
 * `ready`), `apply` uploads, sends and confirms; `all` does both.
 */
async function deployTarget(attempt: Attempt, options: DeployOptions, project: Promise<DeployProject>, waitTimeoutMs: number, phase: 'prepare' | 'apply' | 'all'): Promise<Attempt> {
  const {target, result} = attempt
  const step = (s: DeployStep, detail?: string) => options.onStep?.(target, s, detail)
  let mark = performance.now()
  const lap = () => {
    const now = performance.now()
    const elapsed = now - mark
    mark = now
    return elapsed
  }
  let ended = true
  try {
    if (phase !== 'apply') {
      step('connecting')
      attempt.link = await options.connect(target, options.signal)
      result.timings.connect = lap()

      step('planning')
      const link = attempt.link
      // One round trip for what the node runs and which bundles it lacks (a corrupt one it removed counts:
      // the pipelines that load it are sent again), with the subscription a rollout's soak needs; a plain
      // deploy then learns from the hello (it came with the state) whether it must subscribe to fail fast.
      const [state] = await Promise.all([project.then((p) => link.state({bundles: [...p.bundles.keys()]})), options.dryRun || !options.heartbeats ? undefined : link.watchEvents({heartbeats: true})])
      if (!options.dryRun && !options.heartbeats) await link.watchEvents()
      const missing = state.MISSING_BUNDLES ?? (await link.missingBundles([...(await project).bundles.keys()])) // a node from before BUNDLES in R1_STATE
      const {pipelines} = await project
      // every secret the pipelines refer to must be set for this target (exit 3 naming the command that sets it)
      const secretSets = pipelinesWithSecrets(pipelines).map((p) => ({name: p.name, sealed: sealedFor(options.secrets ?? {version: 1, targets: {}}, {name: target.name, address: target.address}, p.names)}))
      if (secretSets.length > 0) result.secrets = Object.fromEntries(secretSets.map((s) => [s.name, Object.keys(s.sealed)]))
      attempt.secretSets = secretSets
      const plan = planTarget(pipelines, state.PIPELINES, missing)
      result.plan = plan
      attempt.missing = missing
      attempt.archivedBefore = new Map(state.ARCHIVED.map((p) => [p.NAME, p.R1_VERSION]))
      attempt.runningBefore = new Map(state.PIPELINES.map((p) => [p.NAME, p.R1_VERSION]))
      result.timings.connect! += lap() // connect covers the session and the state query
      if (options.dryRun) return finish(attempt, 'planned')
      attempt.ready = true
      if (phase === 'prepare') {
        ended = false
        return attempt
      }
    }
    const plan = result.plan!
    // before the configs that use them; sent every time (a value set again must reach the node even when
    // no config changed), and a set the node already holds changes nothing there
    for (const set of attempt.secretSets ?? []) {
      const SECRETS = Object.fromEntries(Object.entries(set.sealed).map(([name, v]) => [name, {SENDER: v.sender, DATA: v.data}]))
      await attempt.link!.send('R1_SECRETS', {NAME: set.name, SECRETS}, {encrypted: true})
    }
    if (!plan.changed) return finish(attempt, 'unchanged')
    const {bundles} = await project

    step('uploading')
    const changing = plan.pipelines.filter((p) => p.command)
    const needed = new Set(changing.flatMap((p) => (p.command!.action === 'UPDATE_CONFIG' ? Object.values(bundleMap(p.command!.payload)) : [])))
    const toUpload = (attempt.missing ?? []).filter((hash) => needed.has(hash))
    const payloads = changing.map((p) => withMessage(p.command!, options.message))
    const inline = inlined(attempt.link!, changing, payloads, toUpload, bundles)
    const uploading = () => upload(attempt, target, toUpload, bundles, options, (detail) => step('uploading', detail))
    // a direct target uploads on a connection of its own; through a broker the uploads share one
    if (!inline) result.uploaded = await (target.broker ? uploadSlot(options)(uploading) : uploading())
    result.timings.upload = lap()

    step('applying')
    const commands = changing.map((p, i): ConfirmedCommand => ({...p.command!, payload: inline?.[i] ?? payloads[i], expect: expectationOf(p)}) as ConfirmedCommand)
    attempt.applied = changing
    options.onApplying?.(attempt)
    step('confirming', changing.flatMap((p) => p.confirm.instances.map((i) => i.instanceId)).join(', '))
    const {verdict, sentMs, hashes} = await sendAndConfirm(attempt.link!, commands, waitTimeoutMs, options.signal)
    // inline bundles reached the node once every command carrying them was accepted
    if (inline && hashes.length === commands.length && verdict.state !== 'rejected') result.uploaded = toUpload
    result.timings.apply = sentMs
    result.timings.confirm = lap() - sentMs
    const error = verdictError(verdict, `Deploy to ${target.name}`, waitTimeoutMs)
    if (error) throw error
    return finish(attempt, 'deployed')
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error)
    const hint = hintOfError(error)
    if (hint) result.hint = hint
    return finish(attempt, statusOfError(error))
  } finally {
    result.timings.total = performance.now() - attempt.startedAt
    roundTimings(result.timings)
    if (ended) options.onDone?.(target, result)
  }
}

/**
 * A deploy's bundle uploads through a broker run DIRECT_CONCURRENCY at once, whatever its fan-out: each
 * carries a bundle's bytes, and every target's share the one connection (256 uploads of a large bundle
 * would each wait behind the others' bytes, past their answers' timeouts on a slow link).
 */
const uploadSlots = new WeakMap<Connect, ReturnType<typeof limiter>>()

/** The upload slots of one deploy (keyed by its connector, the same through every wave of a rollout). */
function uploadSlot(options: DeployOptions): ReturnType<typeof limiter> {
  let slot = uploadSlots.get(options.connect)
  if (!slot) uploadSlots.set(options.connect, (slot = limiter(DIRECT_CONCURRENCY)))
  return slot
}

/** The secret names each pipeline refers to, found once per project rather than once per target. */
const secretsOfPipelines = new WeakMap<readonly PipelineConfig[], ReadonlyArray<{name: string; names: string[]}>>()

function pipelinesWithSecrets(pipelines: readonly PipelineConfig[]): ReadonlyArray<{name: string; names: string[]}> {
  let found = secretsOfPipelines.get(pipelines)
  if (!found) secretsOfPipelines.set(pipelines, (found = pipelines.map((p) => ({name: p.NAME, names: secretNames(p.PLUGINS)})).filter((p) => p.names.length > 0)))
  return found
}

/** The command's payload with the deploy message (R1_MESSAGE), which the node keeps with the version it makes, not in the config. */
function withMessage(command: NonNullable<PipelinePlan['command']>, message: string | undefined): unknown {
  if (!message) return command.payload
  if (command.action === 'UPDATE_CONFIG') return {...command.payload, R1_MESSAGE: message}
  return command.payload.map((update) => ({...update, R1_MESSAGE: message}))
}

/**
 * The commands' payloads with the bundles they load that the node lacks carried inline (R1_BUNDLE_DATA),
 * when the node takes them (its hello's INLINE_BUNDLES) and every such UPDATE_CONFIG stays within the
 * node's payload bounds; undefined when nothing is missing or they do not fit (they are uploaded first instead).
 */
function inlined(link: NodeLink, changing: readonly PipelinePlan[], payloads: readonly unknown[], missing: readonly string[], bundles: ReadonlyMap<string, Uint8Array>): unknown[] | undefined {
  if (missing.length === 0 || !link.features?.includes(FEATURE_INLINE_BUNDLES)) return undefined
  // base64 takes 4 bytes per 3: a bundle that cannot fit is not encoded for nothing (nor one past an upload chunk, below)
  const fits = (size: number) => Math.ceil(size / 3) * 4 <= COMMAND_LIMITS.maxPayloadBytes && size <= BUNDLE_CHUNK_BYTES
  if (missing.some((hash) => !fits(bundles.get(hash)?.length ?? Number.POSITIVE_INFINITY))) return undefined
  // a bundle that fits is its own first and only upload chunk: encoded once for every target, as chunks are
  const texts = new Map(missing.map((hash) => [hash, bundleChunkBase64(bundles.get(hash)!, hash, 0)]))
  const out: unknown[] = []
  for (const [i, p] of changing.entries()) {
    const loads = p.command!.action === 'UPDATE_CONFIG' ? Object.values(bundleMap(p.command!.payload)).filter((hash) => texts.has(hash)) : []
    if (loads.length === 0) {
      out.push(payloads[i])
      continue
    }
    const payload = {...(payloads[i] as Record<string, unknown>), R1_BUNDLE_DATA: Object.fromEntries(loads.map((hash) => [hash, texts.get(hash)!]))}
    // measured as the node measures it
    if (commandLimitProblem('UPDATE_CONFIG', payload)) return undefined
    out.push(payload)
  }
  return out
}

function finish(attempt: Attempt, status: TargetStatus): Attempt {
  attempt.result.status = status
  attempt.result.ok = !isFailure(status)
  return attempt
}

function expectationOf(p: PipelinePlan): Expectation {
  return {pipeline: p.name, pipelineCode: p.confirm.pipeline ? NotificationCode.PIPELINE_OK : undefined, instances: p.confirm.instances}
}

/**
 * Uploads the bundles the node lacks; a dropped connection is retried with back-off on a fresh
 * session (which asks again what is missing: a bundle may have landed before the drop).
 */
async function upload(attempt: Attempt, target: Target, missingAtStart: string[], bundles: ReadonlyMap<string, Uint8Array>, options: DeployOptions, progress: (detail: string) => void): Promise<string[]> {
  if (missingAtStart.length === 0) return []
  const attempts = options.uploadAttempts ?? 4
  const uploaded: string[] = []
  for (let round = 1; ; round++) {
    try {
      const missing = round === 1 ? missingAtStart : await attempt.link!.missingBundles(missingAtStart)
      // a fresh session (after a drop) has heard the hello by now: its notifications as the node sends them
      if (round > 1) await attempt.link!.watchEvents({heartbeats: options.heartbeats})
      for (const [i, hash] of missing.entries()) {
        const bytes = bundles.get(hash)
        if (!bytes) throw new R1Error(`Bundle ${hash.slice(0, 12)} was not built`, ExitCode.FAILURE, {code: 'BUNDLE_MISSING'})
        progress(`bundle ${i + 1}/${missing.length} (${formatBytes(bytes.length)})`)
        await attempt.link!.putBundle(hash, bytes)
        if (!uploaded.includes(hash)) uploaded.push(hash)
      }
      return uploaded
    } catch (error) {
      // Only a dropped connection is worth another try; a rejection, a bad hash or a stall is not.
      if (statusOfError(error) !== 'unreachable' || round >= attempts || options.signal?.aborted) throw error
      const delay = Math.min(4000, 250 * 2 ** (round - 1))
      progress(`connection lost, retrying in ${delay}ms (${round}/${attempts - 1})`)
      await new Promise((resolve) => setTimeout(resolve, delay))
      await attempt.link!.close().catch(() => undefined)
      attempt.link = await options.connect(target, options.signal)
    }
  }
}

/**
 * Puts back what a target ran before this deploy: the version it ran (R1_ROLLBACK to the version recorded
 * before it was changed), the archived one, or no pipeline at all. A lost connection is opened again.
 */
export async function rollBack(attempt: Attempt, options: DeployOptions, waitTimeoutMs: number): Promise<void> {
  const {result, target} = attempt
  options.onStep?.(target, 'rolling back')
  try {
    if (!attempt.link || attempt.lost) {
      await attempt.link?.close().catch(() => undefined)
      attempt.link = await options.connect(target)
    }
    const confirmed = (name: string, pipelineCode: number) => ({pipeline: name, pipelineCode, instances: []})
    const commands = attempt.applied.flatMap((p): ConfirmedCommand[] => {
      const version = attempt.runningBefore?.get(p.name)
      if (version !== undefined) return [{action: 'R1_ROLLBACK', payload: {NAME: p.name, VERSION: version}, expect: confirmed(p.name, NotificationCode.PIPELINE_OK)}]
      if (p.previous) return [{action: 'UPDATE_CONFIG', payload: p.previous, expect: confirmed(p.name, NotificationCode.PIPELINE_OK)}]
      if (attempt.archivedBefore?.has(p.name)) {
        // it was stopped, not absent: archive it again as it was (deleting it would drop its kept versions)
        const version = attempt.archivedBefore.get(p.name)
        return [
          ...(version === undefined ? [] : [{action: 'R1_ROLLBACK' as const, payload: {NAME: p.name, VERSION: version}, expect: confirmed(p.name, NotificationCode.PIPELINE_OK)}]),
          {action: 'ARCHIVE_CONFIG', payload: p.name, expect: confirmed(p.name, NotificationCode.PIPELINE_ARCHIVE_OK)},
        ]
      }
      return [{action: 'DELETE_CONFIG', payload: p.name, expect: confirmed(p.name, NotificationCode.PIPELINE_DELETE_OK)}]
    })
    const {verdict} = await sendAndConfirm(attempt.link, commands, waitTimeoutMs)
    const error = verdictError(verdict, `Rollback on ${result.target}`, waitTimeoutMs)
    if (error) throw error
    result.rollback = {ok: true}
    if (result.ok) {
      result.status = 'rolled-back'
      result.ok = false
    }
  } catch (error) {
    result.rollback = {ok: false, error: error instanceof Error ? error.message : String(error)}
  } finally {
    options.onDone?.(target, result)
  }
}

/** Milliseconds to 0.1 ms: `49.3`, not `49.28573299999999`, in the --json document. */
function roundTimings(timings: Timings): void {
  for (const key of Object.keys(timings) as Array<keyof Timings>) {
    const value = timings[key]
    if (typeof value === 'number') timings[key] = Math.round(value * 10) / 10
  }
}
