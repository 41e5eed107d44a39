import {ExitCode, R1Error} from '../errors.js'

/**
 * Rollout waves: `--waves 1,10%,50%,100%` (each step a count or a share of every target, counted from
 * the start: where the rollout stands once that wave is done), `--canary N` (N, then the rest),
 * `--max-failed 5%|N` (failures the rollout tolerates so far) and `--soak 60s`.
 */

/** One step of `--waves`: a number of targets, or a percentage of them. */
export type WaveStep = {count: number} | {percent: number}

/** How many targets may fail across the rollout before it is aborted. */
export type FailureBudget = {count: number} | {percent: number}

function usage(message: string, hint: string): R1Error {
  return new R1Error(message, ExitCode.USAGE, {code: 'BAD_ROLLOUT_FLAG', hint})
}

function countOrPercent(text: string, flag: string, hint: string): {count: number} | {percent: number} {
  const t = text.trim()
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(t)
  if (percent) {
    const value = Number(percent[1])
    if (value <= 0 || value > 100) throw usage(`${flag}: ${t} is not a share between 0% and 100%`, hint)
    return {percent: value}
  }
  if (!/^\d+$/.test(t)) throw usage(`${flag}: "${t}" is neither a count nor a percentage`, hint)
  return {count: Number(t)}
}

/** `--soak` or `--max-failed` without waves: they mean nothing to a plain deploy. */
export function rolloutOnly(flag: string): R1Error {
  return usage(`${flag} applies to a rollout in waves: add --waves or --canary`, `e.g. r1 deploy --all --canary 1 ${flag} ${flag === '--soak' ? '60s' : '5%'}`)
}

/** `--waves 1,10%,50%,100%`: steps that grow, the last reaching every target (100%). */
export function parseWaves(text: string): WaveStep[] {
  const hint = 'e.g. --waves 1,10%,50%,100% (each step counts from the start; the last must be 100%)'
  const steps = text.split(',').map((s) => countOrPercent(s, '--waves', hint))
  for (const s of steps) if ('count' in s && s.count < 1) throw usage('--waves: a wave of 0 targets does nothing', hint)
  const last = steps.at(-1)!
  if (!('percent' in last && last.percent === 100)) throw usage(`--waves ${text}: the last wave must be 100% (every target)`, hint)
  return steps
}

/** `--canary N`: N targets first, then all of them. */
export function canaryWaves(count: number): WaveStep[] {
  if (!Number.isInteger(count) || count < 1) throw usage(`--canary ${count}: give at least 1 target`, 'e.g. --canary 1')
  return [{count}, {percent: 100}]
}

/** `--max-failed 5%` or `--max-failed 2`. */
export function parseMaxFailed(text: string): FailureBudget {
  return countOrPercent(text, '--max-failed', 'e.g. --max-failed 5% or --max-failed 2 (targets that may fail before the rollout stops)')
}

/** `--soak 60s` / `2m` / `500ms` / `0` → milliseconds. */
export function parseDuration(text: string, flag = '--soak'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!m) throw usage(`${flag}: "${text}" is not a duration`, `e.g. ${flag} 60s, ${flag} 2m, ${flag} 0`)
  const unit = {ms: 1, s: 1000, m: 60_000, h: 3_600_000}[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']
  return Math.round(Number(m[1]) * unit)
}

/** The failures a budget allows out of `total` targets (a share rounds down: 5% of 10 is 0). */
export function allowedFailures(budget: FailureBudget, total: number): number {
  return 'count' in budget ? budget.count : Math.floor((budget.percent * total) / 100)
}

/**
 * Splits `targets` (in their order) into waves: step k brings the rollout to its count (a share rounds
 * up, so 10% of 5 targets is 1), never fewer than one new target; steps that add nobody are dropped.
 */
export function planWaves<T>(targets: readonly T[], steps: readonly WaveStep[]): T[][] {
  const waves: T[][] = []
  let reached = 0
  for (const step of steps) {
    const goal = Math.min(targets.length, 'count' in step ? step.count : Math.ceil((step.percent * targets.length) / 100))
    if (goal <= reached) continue
    waves.push(targets.slice(reached, goal))
    reached = goal
  }
  if (reached < targets.length) waves.push(targets.slice(reached))
  return waves
}
