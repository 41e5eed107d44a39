import {type Attempt, type DeployOptions, type DeployResult, type TargetResult, applyPrepared, closeAttempts, deploy, prepareTargets, rollBack} from '../deploy/run.js'
import {ExitCode} from '../errors.js'
import {concurrencyFor, pool} from './engine.js'
import {type HealthReport, HealthWatch} from './health.js'
import {exitCodeFor, isFailure} from './result.js'
import {type FailureBudget, type WaveStep, allowedFailures, planWaves} from './waves.js'

/**
 * `r1 deploy --waves/--canary`: the deploy applied wave by wave. Each wave is applied and confirmed
 * (the deploy engine), then watched for the soak (`HealthWatch`, every node reached so far). The
 * rollout stops on any failure in the first wave or more than `--max-failed` failures so far; then
 * every node that took the new version is put back to the version it ran before (recorded from its
 * state before it was changed). Ctrl-C stops starting new waves and asks what to do (without a
 * terminal: roll back).
 */

export interface RolloutOptions extends DeployOptions {
  steps: WaveStep[]
  soakMs: number
  maxFailed: FailureBudget
  /** Called once when the signal aborts: roll back the nodes updated so far, or keep them as they are. */
  onInterrupt?: () => Promise<'rollback' | 'keep'>
  onProgress?: (event: RolloutEvent) => void
}

export type RolloutEvent =
  | {kind: 'wave'; wave: number; of: number; targets: string[]}
  | {kind: 'soak'; wave: number; ms: number}
  | {kind: 'health'; target: string; health: HealthReport}
  | {kind: 'abort'; reason: string}
  | {kind: 'rollback'; targets: string[]}

/** One node's outcome in a rollout: the deploy's, plus its wave, its health and why it is what it is. */
export interface RolloutTargetResult extends TargetResult {
  /** 1-based wave the node was in. */
  wave: number
  /** Health seen during the soak (absent for nodes never reached). */
  health?: HealthReport
}

export interface WavePlan {
  wave: number
  targets: string[]
  state: 'done' | 'stopped' | 'not started'
}

export interface RolloutResult extends DeployResult {
  targets: RolloutTargetResult[]
  waves: WavePlan[]
  /** A `--dry-run`: the waves and each target's plan; nothing changed. */
  dryRun?: true
  /** Why the rollout ended early: `aborted` (a criterion was met) or `interrupted` (Ctrl-C). */
  reason?: 'aborted' | 'interrupted'
  /** What met the criterion (or the interruption), in words. */
  abort?: string
  /** Every node that took the new version was put back. */
  rolledBack?: boolean
  /** From the first failing health signal to the last rollback confirmed (ms), when health aborted the rollout. */
  signalToRollbackMs?: number
}

export async function rollout(options: RolloutOptions): Promise<RolloutResult> {
  const waves = planWaves(options.targets, options.steps)
  const waveOf = new Map(waves.flatMap((w, i) => w.map((t) => [t.name, i + 1] as const)))
  const plans: WavePlan[] = waves.map((w, i) => ({wave: i + 1, targets: w.map((t) => t.name), state: 'not started'}))
  if (options.dryRun) {
    const planned = await deploy({...options, signal: undefined})
    return {...planned, dryRun: true, waves: plans, targets: planned.targets.map((t) => ({...t, wave: waveOf.get(t.target)!}))}
  }

  const budget = allowedFailures(options.maxFailed, options.targets.length)
  const attempts: Attempt[] = []
  const watches = new Map<Attempt, HealthWatch>()
  let abort: string | undefined
  let firstSignalAt: number | undefined
  let wake: (() => void) | undefined
  const failedSoFar = () => attempts.filter((a) => isFailure(a.result.status) || watches.get(a)?.report.status === 'failed')
  const check = () => {
    if (abort) return
    const failed = failedSoFar()
    if (failed.length === 0) return
    const names = failed.map((a) => a.target.name).join(', ')
    // the first wave is the canary: any failure there, even noticed later, stops the rollout
    if (failed.some((a) => waveOf.get(a.target.name) === 1)) abort = `a node of the first wave failed (${names})`
    else if (failed.length > budget) abort = `${failed.length} node${failed.length === 1 ? '' : 's'} failed (${names}), more than --max-failed allows (${budget})`
    if (abort) {
      options.onProgress?.({kind: 'abort', reason: abort})
      wake?.()
    }
  }
  const interrupted = new Promise<void>((resolve) => {
    if (options.signal?.aborted) resolve()
    options.signal?.addEventListener('abort', () => resolve(), {once: true})
  })

  // every target is connected, its state read (the versions to go back to) and its plan made up front,
  // all at once: a wave then only applies and confirms
  const prepared = new Map((await prepareTargets(options.targets, {...options, signal: undefined, heartbeats: true})).map((a) => [a.target, a]))
  for (const [i, wave] of waves.entries()) for (const t of wave) if (i > 0 && prepared.get(t)!.ready) options.onStep?.(t, 'queued', `wave ${i + 1}`)
  try {
    for (const [i, wave] of waves.entries()) {
      if (abort || options.signal?.aborted) break
      const number = i + 1
      plans[i].state = 'done'
      options.onProgress?.({kind: 'wave', wave: number, of: waves.length, targets: wave.map((t) => t.name)})
      // watched from before its commands go: a health answer may come before the confirmation does
      const watch = (attempt: Attempt) => {
        const watcher = new HealthWatch(attempt.link!, new Set(attempt.applied.map((p) => p.name)), (health) => {
          if (health.status === 'failed') {
            firstSignalAt ??= health.at
            if (health.reason?.startsWith('connection lost')) attempt.lost = true
          }
          options.onProgress?.({kind: 'health', target: attempt.target.name, health})
          if (attempts.includes(attempt)) check()
        })
        watches.set(attempt, watcher)
      }
      // the wave is applied to the end even if Ctrl-C comes meanwhile: a half-sent command helps nobody
      const reached = await applyPrepared(
        wave.map((t) => prepared.get(t)!),
        {...options, signal: undefined, onApplying: watch, heartbeats: true},
      )
      attempts.push(...reached)
      check()
      if (abort || options.soakMs <= 0) continue
      options.onProgress?.({kind: 'soak', wave: number, ms: options.soakMs})
      let timer: NodeJS.Timeout | undefined
      await Promise.race([interrupted, new Promise<void>((resolve) => ((wake = resolve), (timer = setTimeout(resolve, options.soakMs))))])
      clearTimeout(timer)
      wake = undefined
      check()
    }
    const stoppedAt = plans.findLastIndex((p) => p.state === 'done')
    if ((abort || options.signal?.aborted) && stoppedAt >= 0 && stoppedAt < plans.length - 1) plans[stoppedAt].state = 'stopped'

    let reason: RolloutResult['reason']
    let rollBackNow = Boolean(abort)
    if (abort) reason = 'aborted'
    else if (options.signal?.aborted) {
      reason = 'interrupted'
      abort = 'interrupted (Ctrl-C): no new wave was started'
      rollBackNow = (await (options.onInterrupt?.() ?? Promise.resolve('rollback'))) === 'rollback'
    }
    for (const w of watches.values()) w.stop()

    const touched = attempts.filter((a) => a.applied.length > 0 && a.result.status !== 'rejected')
    if (rollBackNow && touched.length > 0) {
      options.onProgress?.({kind: 'rollback', targets: touched.map((a) => a.target.name)})
      await pool(touched, concurrencyFor(touched.map((a) => a.target), options.maxConcurrent), (a) => rollBack(a, options, options.waitTimeoutMs ?? 60_000))
    }
    const rolledBackAt = Date.now()

    const targets = options.targets.map((target): RolloutTargetResult => {
      const wave = waveOf.get(target.name)!
      const attempt = attempts.find((a) => a.target === target)
      if (!attempt) return {target: target.name, url: target.url, address: target.address, ok: false, status: 'untouched', error: 'not reached: the rollout stopped before its wave', uploaded: [], timings: {total: 0}, wave}
      const health = watches.get(attempt)?.report
      const result: RolloutTargetResult = {...attempt.result, wave, ...(health ? {health} : {})}
      if (health?.status === 'failed' && !result.error) Object.assign(result, {ok: false, status: 'failed', error: health.reason})
      if (result.rollback) {
        const why = result.error ?? `put back: the rollout was ${reason === 'interrupted' ? 'interrupted' : 'aborted'}`
        if (result.rollback.ok) Object.assign(result, {ok: false, status: 'rolled-back', error: why})
        else Object.assign(result, {ok: false, status: 'rollback-failed', error: `could not be put back: ${result.rollback.error}${result.error ? ` (it had: ${result.error})` : ''}`})
      }
      return result
    })
    const rolledBack = rollBackNow && touched.every((a) => a.result.rollback?.ok)
    let exitCode = exitCodeFor(targets)
    if (reason === 'interrupted') exitCode = ExitCode.INTERRUPTED
    else if (reason === 'aborted') exitCode = rolledBack ? ExitCode.ROLLED_BACK : ExitCode.PARTIAL
    return {
      ok: exitCode === ExitCode.OK,
      exitCode,
      targets,
      waves: plans,
      ...(reason ? {reason, abort, rolledBack} : {}),
      ...(reason === 'aborted' && firstSignalAt !== undefined && rollBackNow ? {signalToRollbackMs: Math.round(rolledBackAt - firstSignalAt)} : {}),
    }
  } finally {
    for (const w of watches.values()) w.stop()
    await closeAttempts([...prepared.values()])
  }
}
