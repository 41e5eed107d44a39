import {ExitCode, R1Error, exitCodeOf} from '../errors.js'
import type {NodeEvent} from '../protocol/events.js'
import type {Action, CommandOf, HeartbeatResult, PayloadOf, QueryAction, ResultOf, StateResult} from '../protocol/messages.js'
import {ConfirmationTracker, type Expectation, type Verdict} from './confirm.js'
import type {Target} from './targets.js'

/**
 * What deploy and the managing commands need from a session with one node. `src/deploy/link.ts`
 * implements it over the session client; keeping it small keeps the orchestration readable.
 */
export interface NodeLink {
  /** The node's verified address. */
  readonly address: string
  readonly alias: string
  /** This client's own address (what the node's operator would allow), when the link knows it. */
  readonly sender?: string
  /** Every node event from now on (already verified); returns the unsubscribe function. */
  onEvent(listener: (event: NodeEvent) => void): () => void
  /** Called when the connection is gone and not back within seconds (exit 7); optional for links that cannot tell. */
  onLost?(listener: (error: Error) => void): () => void
  /** Signs and sends a command; resolves with its EE_HASH once the node accepted it (a rejection throws, exit 4). */
  send<A extends Action>(action: A, payload: PayloadOf<A>, options?: {encrypted?: boolean}): Promise<string>
  /** Sends a query and resolves with its RESULT, checked against the action's schema (a rejection throws, exit 4). */
  request<A extends QueryAction>(action: A, payload: PayloadOf<A>, options?: {encrypted?: boolean}): Promise<ResultOf<A>>
  /** Also receive the node's notifications that name no command (an instance's exception), to fail fast. */
  watchNotifications(): Promise<void>
  /** The node's pipelines and statuses (R1_STATE's RESULT). */
  state(): Promise<StateResult>
  /** A fresh heartbeat (FULL_HEARTBEAT): resources and every instance's counters (the public one for a key the node does not allow). */
  heartbeat(): Promise<HeartbeatResult>
  /** The hashes among `hashes` that the node does not hold (R1_BUNDLE_HAS). */
  missingBundles(hashes: string[]): Promise<string[]>
  /** Uploads one bundle in chunks (R1_BUNDLE_PUT); rejects on a drop or a stall. */
  putBundle(hash: string, bytes: Uint8Array): Promise<void>
  close(): Promise<void>
}

export type Connect = (target: Target, signal?: AbortSignal) => Promise<NodeLink>

/** `invalid`: the project cannot go to that target as it is (e.g. a secret not set for it): exit 3. */
export type TargetStatus = 'deployed' | 'unchanged' | 'planned' | 'ok' | 'failed' | 'invalid' | 'rejected' | 'timeout' | 'unreachable' | 'rolled-back' | 'skipped'

const FAILED_STATUSES = new Set<TargetStatus>(['failed', 'invalid', 'rejected', 'timeout', 'unreachable', 'rolled-back', 'skipped'])

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

const STATUS_EXIT: Partial<Record<TargetStatus, ExitCode>> = {invalid: ExitCode.INVALID_CONFIG, rejected: ExitCode.REJECTED, timeout: ExitCode.TIMEOUT, unreachable: ExitCode.UNREACHABLE}

/**
 * The exit code of a per-target command: 0 when every target succeeded; when every target failed
 * the same way, that way's code (4 rejected, 5 timeout, 7 unreachable, 1 otherwise); else 6.
 */
export function exitCodeFor(results: ReadonlyArray<{status: TargetStatus}>): ExitCode {
  const failed = results.filter((r) => isFailure(r.status))
  if (failed.length === 0) return ExitCode.OK
  if (failed.length < results.length) return ExitCode.PARTIAL
  // a target skipped because of another's failure (--atomic) is not a way of failing of its own
  const causes = failed.some((r) => r.status !== 'skipped') ? failed.filter((r) => r.status !== 'skipped') : failed
  const kinds = new Set(causes.map((r) => r.status))
  if (kinds.size === 1) return STATUS_EXIT[causes[0].status] ?? (results.length === 1 ? ExitCode.FAILURE : ExitCode.PARTIAL)
  return ExitCode.PARTIAL
}

/** The error a failed per-target command ends with (its results are in `details`); undefined when all went well. */
export function failureOf<R extends {status: TargetStatus; target: string; error?: string; hint?: string}>(what: string, results: R[]): R1Error | undefined {
  const code = exitCodeFor(results)
  if (code === ExitCode.OK) return undefined
  const failed = results.filter((r) => isFailure(r.status)).sort((a, b) => Number(a.status === 'skipped') - Number(b.status === 'skipped'))
  const lines = failed.map((r) => `${r.target}: ${r.status}${r.error ? ` — ${r.error}` : ''}`)
  return new R1Error(`${what} failed on ${failed.length} of ${results.length} target${results.length === 1 ? '' : 's'}:\n  ${lines.join('\n  ')}`, code, {
    code: code === ExitCode.PARTIAL ? 'PARTIAL_FAILURE' : `TARGET_${failed[0].status.toUpperCase().replace('-', '_')}`,
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

/** Runs `fn` over items with at most `limit` at once, keeping the results in item order. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({length: Math.max(1, Math.min(limit, items.length))}, worker))
  return results
}

/** A command to send and the confirmation that settles it. */
export type ConfirmedCommand = CommandOf & {expect: Expectation}

/**
 * Sends commands on one link and waits until every expectation is confirmed, one fails or is
 * rejected, or `timeoutMs` passes. Listening starts before the first send, so no confirmation is missed.
 */
export async function sendAndConfirm(
  link: NodeLink,
  commands: readonly ConfirmedCommand[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{verdict: Verdict; hashes: string[]; sentMs: number}> {
  const trackers = commands.map((c) => new ConfirmationTracker(c.expect))
  let settle!: (v: Verdict) => void
  const done = new Promise<Verdict>((resolve) => (settle = resolve))
  const check = () => {
    const verdicts = trackers.map((t) => t.current())
    const bad = verdicts.find((v) => v.state === 'rejected' || v.state === 'failed')
    if (bad) settle(bad)
    else if (verdicts.every((v) => v.state === 'confirmed')) settle(verdicts.length === 1 ? verdicts[0] : {state: 'confirmed'})
  }
  const unsubscribe = link.onEvent((event) => {
    for (const t of trackers) t.observe(event)
    check()
  })
  // a node that died after accepting will never confirm: end the wait now, as unreachable
  const offLost = link.onLost?.((error) => settle({state: 'lost', reason: error.message}))
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const onAbort = () => settle({state: 'failed', reason: 'interrupted'})
  try {
    const hashes: string[] = []
    for (const [i, c] of commands.entries()) {
      const hash = await link.send(c.action, c.payload)
      hashes.push(hash)
      trackers[i].setCommandHash(hash)
    }
    const sentMs = performance.now() - started
    check()
    timer = setTimeout(() => {
      const waiting = trackers.flatMap((t) => {
        const v = t.current()
        return v.state === 'pending' ? v.waitingFor : []
      })
      settle({state: 'pending', waitingFor: waiting})
    }, timeoutMs)
    signal?.addEventListener('abort', onAbort, {once: true})
    return {verdict: await done, hashes, sentMs}
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
    unsubscribe()
    offLost?.()
  }
}

/** The error for a verdict that is not `confirmed` (a pending verdict means the wait timed out). */
export function verdictError(verdict: Verdict, what: string, timeoutMs: number): R1Error | undefined {
  switch (verdict.state) {
    case 'confirmed':
      return undefined
    case 'rejected':
      return new R1Error(`${what} was rejected: ${verdict.reason}`, ExitCode.REJECTED, {code: 'REJECTED'})
    case 'failed':
      return new R1Error(`${what} failed: ${verdict.reason}`, ExitCode.FAILURE, {code: 'INSTANCE_FAILED'})
    case 'lost':
      return new R1Error(`${what}: the node was accepting the command, then ${verdict.reason}; it may or may not have been applied`, ExitCode.UNREACHABLE, {
        code: 'NODE_UNREACHABLE',
        hint: 'Check that the node is running (`r1 status` shows what it holds), then deploy again.',
      })
    case 'pending':
      return new R1Error(`${what}: no confirmation after ${Math.round(timeoutMs / 1000)}s, still waiting for ${verdict.waitingFor.join(', ')}`, ExitCode.TIMEOUT, {code: 'CONFIRM_TIMEOUT'})
  }
}
