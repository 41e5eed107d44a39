import {ExitCode, R1Error, exitCodeOf} from '../errors.js'

/**
 * The one per-node result of every fleet command (deploy, rollouts, the managing commands, logs) and
 * the one rule that turns a list of them into an exit code.
 */

/**
 * What happened on one node. `invalid`: the project cannot go to that target as it is (e.g. a secret
 * not set for it): exit 3. `interrupted`: a stream the user stopped (not a failure). In a rollout:
 * `rolled-back` (took the new version, then was put back), `rollback-failed` (took it and could not be
 * put back), `untouched` (never reached: the rollout stopped before its wave).
 */
export type TargetStatus =
  | 'deployed'
  | 'unchanged'
  | 'planned'
  | 'ok'
  | 'interrupted'
  | 'failed'
  | 'invalid'
  | 'rejected'
  | 'timeout'
  | 'unreachable'
  | 'rolled-back'
  | 'rollback-failed'
  | 'untouched'
  | 'skipped'

/** One node's outcome; each command adds its own data (a deploy's plan, a query's result). */
export interface NodeOutcome {
  target: string
  url: string
  address: string
  ok: boolean
  status: TargetStatus
  error?: string
  /** What to do about the error (a rejection's hint is by its reason). */
  hint?: string
}

/** The outcome of a fleet command: the exit code follows from the per-node statuses (`exitCodeFor`). */
export interface FleetResult<R extends NodeOutcome = NodeOutcome> {
  ok: boolean
  exitCode: ExitCode
  targets: R[]
}

/**
 * Past this many targets, human reports stop giving each its own lines: a fleet's status is a row per
 * node, its progress one line, its failure summary the first ones and a count (a thousand blocks, a
 * thousand progress lines, fit no terminal; `--json` and the per-target table list them all).
 */
export const MAX_TARGET_LINES = 20

const FAILED_STATUSES = new Set<TargetStatus>(['failed', 'invalid', 'rejected', 'timeout', 'unreachable', 'rolled-back', 'rollback-failed', 'untouched', 'skipped'])

/**
 * How many targets ended each way, successes first and the most common first ("998 deployed, 2
 * unreachable"), then how many of `total` are still going.
 */
export function statusCounts(statuses: readonly TargetStatus[], total = statuses.length): string {
  const counts = new Map<TargetStatus, number>()
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1)
  const parts = [...counts]
    .sort(([a, m], [b, n]) => Number(isFailure(a)) - Number(isFailure(b)) || n - m || (a < b ? -1 : 1))
    .map(([status, n]) => `${n} ${status}`)
  if (total > statuses.length) parts.push(`${total - statuses.length} in progress`)
  return parts.join(', ')
}

/** Statuses that stand for another target's failure, not one of their own. */
export const CONSEQUENCES: ReadonlySet<TargetStatus> = new Set<TargetStatus>(['skipped', 'untouched'])

export function isFailure(status: TargetStatus): boolean {
  return FAILED_STATUSES.has(status)
}

/** The hint a thrown error carries (a rejection's, by its reason), for the per-target results. */
export function hintOfError(error: unknown): string | undefined {
  return error instanceof R1Error ? error.hint : undefined
}

/** The status a thrown error gives a target: its exit code tells rejected / timeout / unreachable. */
export function statusOfError(error: unknown): TargetStatus {
  const code = exitCodeOf(error)
  if (code === ExitCode.INVALID_CONFIG) return 'invalid'
  if (code === ExitCode.REJECTED) return 'rejected'
  if (code === ExitCode.TIMEOUT) return 'timeout'
  if (code === ExitCode.UNREACHABLE) return 'unreachable'
  return 'failed'
}

/** A node's outcome from a thrown error: status by its exit code, its message and hint. */
export function failedOutcome(error: unknown): Pick<NodeOutcome, 'ok' | 'status' | 'error' | 'hint'> {
  const status = statusOfError(error)
  const hint = hintOfError(error)
  return {ok: false, status, error: error instanceof Error ? error.message : String(error), ...(hint ? {hint} : {})}
}

const STATUS_EXIT: Partial<Record<TargetStatus, ExitCode>> = {invalid: ExitCode.INVALID_CONFIG, rejected: ExitCode.REJECTED, timeout: ExitCode.TIMEOUT, unreachable: ExitCode.UNREACHABLE}

/**
 * The exit code of a fleet command: 0 when every target succeeded; when every target failed the same
 * way, that way's code (4 rejected, 5 timeout, 7 unreachable, 1 for a single target's other failure);
 * else 6.
 */
export function exitCodeFor(results: ReadonlyArray<{status: TargetStatus}>): ExitCode {
  const failed = results.filter((r) => isFailure(r.status))
  if (failed.length === 0) return ExitCode.OK
  if (failed.length < results.length) return ExitCode.PARTIAL
  // a target skipped because of another's failure (--atomic) is not a way of failing of its own
  const causes = failed.some((r) => !CONSEQUENCES.has(r.status)) ? failed.filter((r) => !CONSEQUENCES.has(r.status)) : failed
  const kinds = new Set(causes.map((r) => r.status))
  if (kinds.size === 1) return STATUS_EXIT[causes[0].status] ?? (results.length === 1 ? ExitCode.FAILURE : ExitCode.PARTIAL)
  return ExitCode.PARTIAL
}

/** A fleet result from per-node outcomes, with the exit code of `exitCodeFor`. */
export function fleetResult<R extends NodeOutcome>(targets: R[]): FleetResult<R> {
  const exitCode = exitCodeFor(targets)
  return {ok: exitCode === ExitCode.OK, exitCode, targets}
}

/** One target's outcome on one line: `edge-a: unreachable — why`. */
export function outcomeLine(target: string, status: TargetStatus, error?: string): string {
  return `${target}: ${status}${error ? ` — ${error}` : ''}`
}

/** The error a failed fleet command ends with (its results are in `details`); undefined when all went well. */
export function failureOf<R extends {status: TargetStatus; target: string; error?: string; hint?: string}>(what: string, results: R[], exitCode = exitCodeFor(results)): R1Error | undefined {
  const code = exitCode
  if (code === ExitCode.OK) return undefined
  const failed = results.filter((r) => isFailure(r.status)).sort((a, b) => Number(CONSEQUENCES.has(a.status)) - Number(CONSEQUENCES.has(b.status)))
  const lines = failed.slice(0, MAX_TARGET_LINES).map((r) => outcomeLine(r.target, r.status, r.error))
  if (failed.length > MAX_TARGET_LINES) lines.push(`… and ${failed.length - MAX_TARGET_LINES} more (${statusCounts(failed.slice(MAX_TARGET_LINES).map((r) => r.status))}; each is listed above, and in --json)`)
  return new R1Error(`${what} failed on ${failed.length} of ${results.length} target${results.length === 1 ? '' : 's'}:\n  ${lines.join('\n  ')}`, code, {
    code: code === ExitCode.PARTIAL ? 'PARTIAL_FAILURE' : `TARGET_${failed[0].status.toUpperCase().replaceAll('-', '_')}`,
    // the first failure's own hint (a rejection's is by its reason), else one by status
    hint: failed.find((r) => r.hint)?.hint ?? hintFor(failed[0].status),
  })
}

function hintFor(status: TargetStatus): string {
  switch (status) {
    case 'rejected':
      return 'The node refused the command for the reason above; `r1 status` shows what it holds.'
    case 'unreachable':
      return 'Check the URL and that the node is running (r1 node start); a wss:// node with a self-signed certificate needs --ca.'
    case 'timeout':
      return 'The node did not confirm in time: check `r1 status`, or raise --wait-timeout.'
    default:
      return 'See each target above; `r1 status` shows instance errors.'
  }
}
