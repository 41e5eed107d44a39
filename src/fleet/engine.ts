import type {Target} from '../deploy/targets.js'
import {ExitCode, R1Error} from '../errors.js'
import type {NodeEvent} from '../protocol/events.js'
import type {Action, CommandOf, HeartbeatResult, PayloadOf, QueryAction, ResultOf, StateResult} from '../protocol/messages.js'
import type {StateQuery} from '../session/index.js'
import {ConfirmationTracker, type Expectation, type Verdict} from './confirm.js'
import {type FleetResult, type NodeOutcome, failedOutcome, fleetResult} from './result.js'

/**
 * The fleet engine: "do this on many nodes, confirm, report per node". Deploy, rollouts and the
 * managing commands run their per-node work through `pool`/`onEveryTarget`, confirm with
 * `sendAndConfirm` (one confirmation matcher, `confirm.ts`), and report `NodeOutcome`s whose exit code
 * follows one rule (`result.ts`).
 */

/**
 * What the fleet needs from a session with one node. `src/deploy/link.ts` implements it over the
 * session client; keeping it small keeps the orchestration readable.
 */
export interface NodeLink {
  /** The node's verified address. */
  readonly address: string
  readonly alias: string
  /** This client's own address (what the node's operator would allow), when the link knows it. */
  readonly sender?: string
  /** What the node does beyond the protocol's base (its hello's FEATURES), once heard. */
  readonly features?: readonly string[]
  /** Every node event from now on (already verified); returns the unsubscribe function. */
  onEvent(listener: (event: NodeEvent) => void): () => void
  /** Called when the connection is gone and not back within seconds (exit 7); optional for links that cannot tell. */
  onLost?(listener: (error: Error) => void): () => void
  /**
   * Signs and sends a command; resolves with its EE_HASH once the node accepted it (a rejection throws, exit 4).
   * `confirmWithinMs`: how long the caller then waits for its confirmations (lost ones are asked for again meanwhile).
   */
  send<A extends Action>(action: A, payload: PayloadOf<A>, options?: {encrypted?: boolean; confirmWithinMs?: number}): Promise<string>
  /** Sends a query and resolves with its RESULT, checked against the action's schema (a rejection throws, exit 4). */
  request<A extends QueryAction>(action: A, payload: PayloadOf<A>, options?: {encrypted?: boolean}): Promise<ResultOf<A>>
  /** Also receive the node's notifications that name no command (an instance's exception), to fail fast; and with `heartbeats`, its heartbeats, to watch its health during a soak. */
  watchEvents(options?: {heartbeats?: boolean}): Promise<void>
  /** The node's pipelines and statuses (R1_STATE's RESULT); with a fresh heartbeat, or which of `bundles` it lacks, when asked. */
  state(query?: Omit<StateQuery, 'name'>): Promise<StateResult>
  /** A fresh heartbeat (FULL_HEARTBEAT): resources and every instance's counters (the public one for a key the node does not allow). */
  heartbeat(): Promise<HeartbeatResult>
  /** The hashes among `hashes` that the node does not hold (R1_BUNDLE_HAS). */
  missingBundles(hashes: string[]): Promise<string[]>
  /** Uploads one bundle in chunks (R1_BUNDLE_PUT); rejects on a drop or a stall. */
  putBundle(hash: string, bytes: Uint8Array): Promise<void>
  close(): Promise<void>
}

export type Connect = (target: Target, signal?: AbortSignal) => Promise<NodeLink>

/** One node's outcome of a managing command, with what the operation returned there. */
export interface ManageResult<T> extends NodeOutcome {
  result?: T
}

export interface FanOutOptions {
  targets: Target[]
  connect: Connect
  maxConcurrent?: number
  signal?: AbortSignal
  onDone?: (result: ManageResult<unknown>) => void
}

/** Runs `operation` on every target (connect, run, close), never throwing: failures become results. */
export async function onEveryTarget<T>(options: FanOutOptions, operation: (link: NodeLink, target: Target) => Promise<T>): Promise<FleetResult<ManageResult<T>>> {
  const targets = await pool(options.targets, concurrencyFor(options.targets, options.maxConcurrent), async (target) => {
    const base = {target: target.name, url: target.url, address: target.address}
    let link: NodeLink | undefined
    let out: ManageResult<T>
    try {
      link = await options.connect(target, options.signal)
      out = {...base, ok: true, status: 'ok', result: await operation(link, target)}
    } catch (error) {
      out = {...base, ...failedOutcome(error)}
    } finally {
      await link?.close().catch(() => undefined)
    }
    options.onDone?.(out)
    return out
  })
  return fleetResult(targets)
}

/**
 * Targets handled at once unless `--max-concurrent` says: a direct target is a connection (and a TLS
 * handshake) of its own, while through a broker every session shares the CLI's one connection and a
 * fleet's round trips overlap (at 8, a thousand nodes took twice as long on one machine, and far longer
 * across a real network, where each target waits out its own round trips).
 */
export const DIRECT_CONCURRENCY = 8
export const BROKER_CONCURRENCY = 256

/** The fan-out for these targets: `requested`, else BROKER_CONCURRENCY when every one is behind a broker, else DIRECT_CONCURRENCY. */
export function concurrencyFor(targets: ReadonlyArray<Pick<Target, 'broker'>>, requested: number | undefined): number {
  return requested ?? (targets.length > 0 && targets.every((t) => t.broker) ? BROKER_CONCURRENCY : DIRECT_CONCURRENCY)
}

/** At most `limit` of the calls given to it run at once; the others wait their turn, in order. */
export function limiter(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0
  const waiting: Array<() => void> = []
  return async (fn) => {
    // a slot freed is handed to the next in line, so a caller arriving meanwhile cannot take it too
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve))
    else running++
    try {
      return await fn()
    } finally {
      const next = waiting.shift()
      if (next) next()
      else running--
    }
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
      const hash = await link.send(c.action, c.payload, {confirmWithinMs: timeoutMs})
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
