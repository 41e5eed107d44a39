import {ExitCode} from '../errors.js'

/** `r1 doctor`'s vocabulary: one result per check (and per target for the node checks). */

/** `skip`: the check could not run (no TLS on ws://, the node unreachable, no key); it never fails the run. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip'

/** Stable ids: tools match on them. */
export const CHECK_IDS = ['node-version', 'key-file', 'project', 'tls', 'reachable', 'address', 'clock', 'allow-list'] as const
export type CheckId = (typeof CHECK_IDS)[number]

export interface CheckResult {
  id: CheckId
  status: CheckStatus
  /** The target a node check is about (its config.yaml name, or host:port for --node). */
  target?: string
  message: string
  /** What to do about a warn or fail. */
  hint?: string
  /** Figures behind the verdict (days left, offset in ms, mode, …). */
  details?: Record<string, unknown>
}

export interface DoctorReport {
  /** No check failed (with `strict`, none warned either). */
  ok: boolean
  exitCode: ExitCode
  summary: Record<CheckStatus, number>
  checks: CheckResult[]
}

/** The run's verdict from its worst status: a failed check exits 1; a warning only with `strict`. */
export function doctorReport(checks: CheckResult[], strict = false): DoctorReport {
  const summary: Record<CheckStatus, number> = {ok: 0, warn: 0, fail: 0, skip: 0}
  for (const check of checks) summary[check.status]++
  const ok = summary.fail === 0 && (!strict || summary.warn === 0)
  return {ok, exitCode: ok ? ExitCode.OK : ExitCode.FAILURE, summary, checks}
}
