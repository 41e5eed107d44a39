import {R1Error} from '../errors.js'
import {canonicalJson, signingCanonical} from '../protocol/canonical.js'
import {NotificationCode, NotificationType} from '../protocol/codes.js'
import type {NodeEvent} from '../protocol/events.js'
import {compileFilter, gapEvent, liveMarker, type EventFilter, type EventMatcher, type GapEvent} from '../protocol/filter.js'
import {type Action, type BundlePut, DEPLOY_ACTIONS, FEATURE_INLINE_BUNDLES, FEATURE_KEEPS_WAITING_SESSIONS, FEATURE_PIPELINE_FAILURES, type Hello, type PayloadOf, READ_ACTIONS, type Rejection, type RejectionReason, type Reply, SUBPROTOCOL, type Subscribe} from '../protocol/messages.js'
import {SERVICE_ACTIONS, type ServiceAction} from '../protocol/services.js'
import {type DecodedSigned, encodeBatch, signCanonical} from '../protocol/wire.js'
import {admitCommand, type Admitted, FloodGuard} from './admission.js'
import {TokenBucket} from './token-bucket.js'
import type {CommandMeta} from './contract.js'
import type {HistoryCursor, NodeServer} from './server.js'

/**
 * One client connection, whatever carries it: rate limit and admission of each incoming frame, the
 * command's execution, the connection's subscription (journal history, then live) and its outgoing
 * queue, signed per frame and batched while the transport is busy. The transport (a WebSocket in
 * server.ts) only moves frames.
 */

/** What a connection needs of the link to its peer. */
export interface FrameTransport {
  readonly open: boolean
  /** Bytes handed to the transport and not yet sent (the connection batches above the server's high-water mark). */
  readonly bufferedAmount: number
  send(frame: string | Buffer): void
  close(code: number, reason: string): void
  /** Drops the link at once (no closing handshake to wait for); with a code, a close frame goes first. */
  terminate(code?: number, reason?: string): void
  /** A liveness probe; the transport calls Connection.pong() when answered. */
  ping(): void
  /**
   * Frames can be lost on the way (a broker past its queue limit): the client sends a command whose answer
   * it missed again, and the connection answers it again from its recent answers instead of refusing a replay.
   */
  readonly lossy?: boolean
}

const MAX_BATCH_BYTES = 768 * 1024
const COMMAND_OWNER_TTL_MS = 10 * 60_000
/**
 * How long a connection with a command still running is kept however silent: longer than commands take
 * (an update's deferrals end within 20 s, an instance's stop within its SHUTDOWN_TIMEOUT), bounded so that
 * one stuck in the node's queue does not keep a gone peer's connection and slot for good.
 */
const MAX_WAITING_HOLD_MS = 5 * 60_000
/** Housekeeping ticks after an answer that do not judge its peer (the next one does, on whether it was heard since the answer). */
const ANSWER_SPARED_TICKS = 2
/** Answers (R1_REPLY or rejection) a lossy connection keeps to send again, the most recent ones. */
const KEPT_ANSWERS = 256
/** Bytes of notifications a lossy connection keeps with its answers (a deploy's confirmations are a few hundred bytes each). */
const KEPT_CONFIRMATION_BYTES = 4 * 1024 * 1024
const HASH_IN_TEXT = /"EE_HASH"\s*:\s*"([0-9a-f]{64})"/

interface OutItem {
  object: Record<string, unknown>
  /** Its canonical JSON in UTF-8. */
  json: Buffer
  /** Part of the subscription stream (dropped and re-read from the journal when the reader is slow). */
  sub: boolean
}

interface Subscription {
  /** Who subscribed, and the EE_HASH of the R1_SUBSCRIBE (named when the node ends it). */
  sender: string
  hash: string
  matcher: EventMatcher
  filter: EventFilter | undefined
  /** Last seq enqueued for this subscription. */
  position: number
  mode: 'live' | 'history'
  cursor?: HistoryCursor
  /** Increments on every (re)subscribe so a stale history pump stops. */
  generation: number
}

export class Connection {
  private readonly bucket: TokenBucket
  private readonly heartbeatBucket: TokenBucket
  private readonly flood: FloodGuard
  private lastThrottleNotice = Number.NEGATIVE_INFINITY
  private alive = true
  private readonly queue: OutItem[] = []
  private queuedSubscriptionItems = 0
  private flushScheduled = false
  private flushTimer?: NodeJS.Timeout
  private graceTimer?: NodeJS.Timeout
  private subscription?: Subscription
  private generation = 0
  private pumping = false
  /** Ends the history pump's current wait early (set while it waits). */
  private wakePump?: () => void
  private readonly ownedHashes = new Set<string>()
  /** On a lossy transport: the answer to each recent command by EE_HASH, or 'running' until there is one. */
  private readonly answers = new Map<string, object | 'running'>()
  /** Commands admitted and not answered yet, and since when there has been one. */
  private running = 0
  private runningSince = 0
  /** Housekeeping periods not judged after the last answer (see checkAlive). */
  private sparedTicks = 0
  /** On a lossy transport: the notifications naming each of those commands sent here directly, to send again with the answer. */
  private readonly confirmations = new Map<string, Array<{event: object; json: Buffer}>>()
  private confirmationBytes = 0
  private disposed = false
  /** The hello this connection opened with, and the EE_HASH of the first command it got (a broker session's greeting). */
  private readonly hello: Hello
  private greetingHash?: string

  constructor(
    private readonly server: NodeServer,
    private readonly transport: FrameTransport,
  ) {
    const now = server.now()
    this.bucket = new TokenBucket(server.rate.burst, server.rate.perSecond, now)
    const publicRate = server.options.publicHeartbeatRate ?? {burst: 5, perSecond: 1}
    this.heartbeatBucket = new TokenBucket(publicRate.burst, publicRate.perSecond, now)
    this.flood = new FloodGuard(server.rate.closeAfter)
    this.graceTimer = setTimeout(() => {
      // terminated, not closed: a peer that never answers the closing handshake does not keep its socket
      if (!server.slots.isAuthenticated(this)) this.terminate(1008, `no command from an allow-listed sender within ${Math.round(server.authGraceMs / 1000)} s`)
    }, server.authGraceMs)
    this.graceTimer.unref()
    this.hello = {
      EE_EVENT_TYPE: 'R1_HELLO',
      EE_PAYLOAD_PATH: [server.core.alias, null, null, null],
      // the clock commands' TIME is checked against: clients measure their skew from it
      EE_TIMESTAMP: new Date(server.now()).toISOString(),
      EE_ADDR: server.address,
      EE_ALIAS: server.core.alias,
      LAST_SEQ: server.core.lastSeq(),
      VERSION: server.options.version ?? null,
      PROTOCOL: SUBPROTOCOL,
      // bundles inline only where the core stores bundles
      FEATURES: [FEATURE_PIPELINE_FAILURES, FEATURE_KEEPS_WAITING_SESSIONS, ...(server.queries.putBundle ? [FEATURE_INLINE_BUNDLES] : [])],
    }
    this.enqueue(this.hello)
  }

  /** The peer answered a liveness probe. */
  pong(): void {
    this.alive = true
  }

  checkAlive(): void {
    // A peer whose command still runs here waits for its answer: silent, not gone (KEEPS_WAITING_SESSIONS); a
    // command that never ends holds it for a bounded time only.
    const held = this.running > 0 && this.server.now() - this.runningSince < MAX_WAITING_HOLD_MS
    // After an answer, a peer that probed seldom while it waited may not have it yet (a busy broker or client
    // delivers late): judged at the third tick after the last one, on whether it was heard since (two periods
    // at least; ticks of a saturated loop do not count).
    if (held || this.sparedTicks > 0) {
      if (!held) this.sparedTicks--
      this.transport.ping()
      return
    }
    if (!this.alive) {
      this.transport.terminate()
      return
    }
    this.alive = false
    this.transport.ping()
  }

  /** Ends the subscription of a sender taken off the allow-list since it subscribed (checked every housekeeping tick). */
  checkSubscriber(): void {
    const sub = this.subscription
    if (!sub || this.server.options.allowList.has(sub.sender)) return
    this.subscription = undefined
    this.generation++
    this.dropQueuedSubscriptionItems()
    this.reject('NOT_ALLOWED', `${sub.sender} was removed from this node's allow-list: its subscription ended`, sub.hash, 'R1_SUBSCRIBE')
  }

  close(code: number, reason: string): void {
    this.transport.close(code, reason)
  }

  /** Ends the connection now (its socket and slot are freed at once); with a code, the peer gets a close frame first. */
  terminate(code?: number, reason?: string): void {
    this.transport.terminate(code, reason)
  }

  dispose(): void {
    this.disposed = true
    this.queue.length = 0
    this.subscription = undefined
    if (this.flushTimer) clearTimeout(this.flushTimer)
    if (this.graceTimer) clearTimeout(this.graceTimer)
    for (const hash of this.ownedHashes) {
      if (this.server.commandOwners.get(hash)?.connection === this) this.server.commandOwners.delete(hash)
    }
    this.server.forgetCommander(this)
  }

  // ---- incoming ----

  /** Counts a refused frame; closes the connection (1008) when it keeps flooding. */
  private strike(): boolean {
    if (this.flood.strike(this.server.now())) return true
    this.server.log('closing a connection that keeps flooding')
    this.close(1008, 'flooding: too many refused frames')
    return false
  }

  /** One incoming frame: its text, or undefined for a binary frame; `verified` when the transport already checked its signature. */
  receive(frame: string | undefined, verified?: DecodedSigned): void {
    if (this.disposed) return
    const text = frame ?? ''
    const now = this.server.now()
    if (!this.bucket.take(now)) {
      if (!this.strike()) return
      if (now - this.lastThrottleNotice >= 100) {
        this.lastThrottleNotice = now
        const perSecond = this.server.rate.perSecond
        this.reject('THROTTLED', `too many commands on this connection (over ${perSecond}/s); slow down and resend`, HASH_IN_TEXT.exec(text.slice(0, 4096))?.[1] ?? null, null)
      }
      return
    }
    if (frame === undefined) {
      this.strike()
      this.reject('BAD_JSON', 'binary frames are not accepted; send JSON text frames', null, null)
      return
    }
    void this.handleCommand(text, verified).catch((error) => {
      this.server.log(`command handling failed: ${(error as Error).stack ?? error}`)
    })
  }

  private async handleCommand(text: string, verified?: DecodedSigned): Promise<void> {
    const server = this.server
    const replay = server.replay
    const admitted = admitCommand(text, {
      nodeAddress: server.address,
      identity: server.options.identity,
      skewMs: server.skewMs,
      now: server.now(),
      isAllowed: (sender) => server.options.allowList.has(sender),
      remember: (sender, hash, expires) => replay.check(sender, hash, expires),
    }, verified)
    // The greeting again (a public probe runs again, a command is a replay or refused again): its client never had
    // the hello, lost with its answer or with a broker that restarted, and cannot open the session without it, nor
    // read the refusal. The same hello, which a client that has it already takes unchanged. (A lossy transport's
    // sender is verified before its connection exists: the hash is its own.)
    if (this.transport.lossy && admitted.hash !== null) {
      if (admitted.hash === this.greetingHash) this.enqueue(this.hello)
      this.greetingHash ??= admitted.hash
    }
    if (!admitted.ok) {
      // the same command again, on a connection that may have lost its answer or confirmations: those again (while
      // it still runs, the confirmations so far: the answer is on its way); it never runs twice
      const answered = admitted.reason === 'REPLAY' && admitted.hash !== null ? this.answers.get(admitted.hash) : undefined
      if (answered) {
        if (answered !== 'running') this.enqueue(answered)
        for (const {event, json} of this.confirmations.get(admitted.hash!) ?? []) this.enqueue(event, json)
        return
      }
      if (admitted.strike) this.strike()
      this.reject(admitted.reason, admitted.detail, admitted.hash, admitted.action)
      return
    }
    if (this.running++ === 0) this.runningSince = server.now()
    try {
      await this.carryOut(admitted)
    } finally {
      this.running--
      this.alive = false
      this.sparedTicks = ANSWER_SPARED_TICKS
    }
  }

  /** An admitted command, until its answer is on its way. */
  private async carryOut(admitted: Admitted): Promise<void> {
    const server = this.server
    const {command, action, payload, hash, sender} = admitted
    this.keepAnswer(hash, 'running')
    if (!admitted.allowed) {
      // A stranger may only ask for the public heartbeat (cached, never journaled) or probe: rate-limited.
      if (!this.heartbeatBucket.take(server.now())) {
        this.reject('THROTTLED', 'too many heartbeat requests on this connection; at most one per second', hash, action)
        return
      }
      this.reply(hash, action, action === 'R1_PING' ? null : server.publicHeartbeatResult())
      return
    }
    server.slots.authenticate(this)
    if (server.isClosing) {
      this.reject('SHUTTING_DOWN', 'the node is shutting down', hash, action)
      return
    }
    try {
      // The hash is on disk before a command that changes anything runs: a replay after a restart is still refused.
      if (!READ_ACTIONS.has(action)) await server.replay.durable()
    } catch (error) {
      this.reject('EXECUTION_FAILED', `cannot record the command against replay: ${(error as Error).message}; nothing changed`, hash, action)
      return
    }
    await this.execute(action, payload, {hash, sender, initiator: command.INITIATOR_ID, sessionId: command.SESSION_ID, encrypted: admitted.encrypted})
  }

  private async execute(action: Action, payload: unknown, meta: CommandMeta): Promise<void> {
    const core = this.server.core
    switch (action) {
      case 'FULL_HEARTBEAT':
        this.reply(meta.hash, action, core.heartbeat())
        return
      case 'R1_SUBSCRIBE':
        await this.subscribe(payload as Subscribe, meta)
        return
      case 'R1_STATE': {
        const query = payload as PayloadOf<'R1_STATE'>
        return this.answer(meta.hash, action, () => ({
          ...this.server.stateResult(query?.NAME),
          ...(query?.HEARTBEAT ? {HEARTBEAT: core.heartbeat()} : {}),
          ...(query?.BUNDLES ? {MISSING_BUNDLES: this.server.bundleHas(query.BUNDLES).MISSING} : {}),
        }))
      }
      case 'R1_BUNDLE_HAS':
        return this.answer(meta.hash, action, () => this.server.bundleHas((payload as {HASHES: string[]}).HASHES))
      case 'R1_BUNDLE_PUT':
        return this.answer(meta.hash, action, () => this.server.uploads.put(meta.sender, payload as BundlePut))
      case 'R1_PING':
        this.reply(meta.hash, action, null)
        return
      case 'R1_UNSUBSCRIBE':
        this.subscription = undefined
        this.generation++
        this.dropQueuedSubscriptionItems()
        this.reply(meta.hash, action, null)
        return
    }
    if (SERVICE_ACTIONS.has(action)) return this.answer(meta.hash, action, () => this.server.services.run(action as ServiceAction, payload as PayloadOf<ServiceAction>, meta))
    this.ownedHashes.add(meta.hash)
    this.server.commandOwners.set(meta.hash, {connection: this, expires: Date.now() + COMMAND_OWNER_TTL_MS})
    if (DEPLOY_ACTIONS.has(action)) {
      const named = [payload as PayloadOf<'UPDATE_CONFIG'> | PayloadOf<'BATCH_UPDATE_PIPELINE_INSTANCE'>].flat().map((p) => p.NAME)
      this.server.commanded(this, named, meta.sender, COMMAND_OWNER_TTL_MS)
    }
    try {
      // admission checked the payload against the action's schema; a command's outcome comes as notifications (RESULT null)
      await core.execute(action, payload as PayloadOf<typeof action>, meta)
    } catch (error) {
      const message = error instanceof R1Error || error instanceof Error ? error.message : String(error)
      this.reject('EXECUTION_FAILED', message, meta.hash, action)
      return
    }
    this.reply(meta.hash, action, null)
  }

  private async answer(hash: string, action: Action, compute: () => unknown): Promise<void> {
    let result: unknown
    try {
      result = await compute()
    } catch (error) {
      this.reject('EXECUTION_FAILED', error instanceof Error ? error.message : String(error), hash, action)
      return
    }
    this.reply(hash, action, result)
  }

  // ---- subscriptions ----

  private async subscribe(request: Subscribe, {hash, sender}: CommandMeta): Promise<void> {
    const filter: EventFilter | undefined = request.TYPES || request.FILTER ? {...request.FILTER, ...(request.TYPES ? {TYPES: request.TYPES} : {})} : undefined
    const generation = ++this.generation
    this.dropQueuedSubscriptionItems()
    const history = this.server.options.history
    const lastSeq = this.server.core.lastSeq()
    // A resume whose seqs this journal does not have: another journal (data dir wiped or replaced), so
    // from its start; or this one gone back (restored from a backup, a power loss), so from its end.
    let resetTo: number | undefined
    if (request.SINCE_SEQ !== undefined && request.JOURNAL_ID !== undefined && history?.id !== undefined) {
      if (request.JOURNAL_ID !== history.id) resetTo = 0
      else if (request.SINCE_SEQ > lastSeq) resetTo = lastSeq
    }
    const sinceSeq = resetTo ?? request.SINCE_SEQ
    const wantsHistory = sinceSeq !== undefined || (request.LAST !== undefined && request.LAST > 0) || request.SINCE_TIME !== undefined
    const subscription: Subscription = {sender, hash, matcher: compileFilter(filter), filter, position: lastSeq, mode: 'live', generation}
    if (wantsHistory && history) {
      subscription.cursor = await history.cursor({
        sinceSeq,
        last: sinceSeq === undefined ? request.LAST : undefined,
        sinceTime: request.SINCE_TIME === undefined ? undefined : Date.parse(request.SINCE_TIME),
        filter,
      })
      if (generation !== this.generation) return
      subscription.position = subscription.cursor.position
      subscription.mode = 'history'
    }
    this.subscription = subscription
    this.reply(hash, 'R1_SUBSCRIBE', {LAST_SEQ: lastSeq, FROM_SEQ: subscription.position, ...(history?.id ? {JOURNAL_ID: history.id} : {})})
    if (resetTo !== undefined) this.enqueueGap(request.SINCE_SEQ! + 1, resetTo, 'reset', history?.id)
    if (wantsHistory && !history && request.SINCE_SEQ !== undefined && request.SINCE_SEQ < lastSeq) {
      this.enqueueGap(request.SINCE_SEQ + 1, lastSeq)
    }
    if (subscription.mode === 'history') void this.pump()
    else this.enqueueLiveMarker(subscription.position)
  }

  /** Tells the subscriber that history is over (r1 logs without --follow stops there). */
  private enqueueLiveMarker(position: number): void {
    this.enqueue(liveMarker(this.server.core.alias, position), undefined, true)
  }

  /** Offers a live event; true when it was queued for this connection's subscription. */
  offerLive(event: NodeEvent, json: Buffer): boolean {
    const sub = this.subscription
    if (!sub || this.disposed) return false
    if (sub.mode === 'history') return sub.matcher(event) // the pump will read it from the journal
    if (event.EE_MESSAGE_SEQ <= sub.position) return sub.matcher(event)
    sub.position = event.EE_MESSAGE_SEQ
    if (!sub.matcher(event)) return false
    if (this.queuedSubscriptionItems >= this.server.maxQueued) {
      this.fallBehind()
      return true
    }
    this.enqueue(event, json, true)
    return true
  }

  /** A slow reader: forget what is queued and resume from the journal once its socket drains. */
  private fallBehind(): void {
    const sub = this.subscription!
    const history = this.server.options.history
    this.server.stats.fallbacks++
    const firstDropped = this.dropQueuedSubscriptionItems(true)
    const resumeAfter = firstDropped === undefined ? sub.position : firstDropped - 1
    if (!history) {
      this.enqueueGap(resumeAfter + 1, sub.position)
      return
    }
    sub.mode = 'history'
    sub.cursor = undefined
    sub.position = resumeAfter
    void this.pump()
  }

  private async pump(): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      for (;;) {
        const sub = this.subscription
        if (!sub || sub.mode !== 'history' || this.disposed) return
        if (this.queuedSubscriptionItems > 500 || this.transport.bufferedAmount > this.server.highWater) {
          await this.pause(10)
          continue
        }
        const history = this.server.options.history!
        sub.cursor ??= await history.cursor({sinceSeq: sub.position, filter: sub.filter})
        const page = await sub.cursor.next(500)
        if (this.disposed) return
        if (sub !== this.subscription) continue // resubscribed meanwhile: this pump serves the new one
        for (const {entry, json} of page) {
          this.enqueue(entry, json, true)
          if (typeof entry.EE_MESSAGE_SEQ === 'number') sub.position = entry.EE_MESSAGE_SEQ
        }
        sub.position = Math.max(sub.position, sub.cursor.position)
        // Caught up with the core (the journal appends before the core emits): live from here.
        if (sub.cursor.caughtUp && sub.position >= this.server.core.lastSeq()) {
          sub.mode = 'live'
          sub.cursor = undefined
          this.enqueueLiveMarker(sub.position)
          return
        }
        if (page.length === 0) await this.pause(5)
      }
    } catch (error) {
      this.server.log(`history read failed: ${(error as Error).message}`)
    } finally {
      this.pumping = false
    }
  }

  /** The history pump's wait: `ms` at most, ended early once a frame went out (`wakePump`). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.wakePump = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wakePump = done
    })
  }

  private enqueueGap(fromSeq: number, toSeq: number, reason: GapEvent['REASON'] = 'retention', journalId?: string): void {
    this.enqueue({...gapEvent(fromSeq, toSeq, reason), ...(journalId ? {JOURNAL_ID: journalId} : {}), EE_PAYLOAD_PATH: [this.server.core.alias, null, null, null]}, undefined, true)
  }

  // ---- outgoing ----

  private reply(hash: string, action: Action, result: unknown): void {
    const reply: Reply = {
      EE_EVENT_TYPE: 'R1_REPLY',
      EE_PAYLOAD_PATH: [this.server.core.alias, null, null, null],
      EE_TIMESTAMP: new Date().toISOString(),
      COMMAND_HASH: hash,
      ACTION: action,
      RESULT: result === undefined ? null : result,
    }
    this.keepAnswer(hash, reply)
    this.enqueue(reply)
  }

  private keepAnswer(hash: string, answer: object | 'running'): void {
    if (!this.transport.lossy) return
    this.answers.delete(hash) // re-inserted last: the oldest go first
    this.answers.set(hash, answer)
    if (this.answers.size <= KEPT_ANSWERS) return
    const oldest = this.answers.keys().next().value!
    this.answers.delete(oldest)
    for (const {json} of this.confirmations.get(oldest) ?? []) this.confirmationBytes -= json.length
    this.confirmations.delete(oldest)
  }

  /** Sends a notification naming a command this connection sent (a confirmation), kept with its answer on a lossy transport. */
  confirm(hash: string, event: object, json: Buffer): void {
    this.enqueue(event, json)
    if (!this.answers.has(hash)) return
    // past the budget, newer ones are not kept: a frame lost then costs a wait for the caller's timeout, not memory
    if (this.confirmationBytes + json.length > KEPT_CONFIRMATION_BYTES) return
    let kept = this.confirmations.get(hash)
    if (!kept) this.confirmations.set(hash, (kept = []))
    kept.push({event, json})
    this.confirmationBytes += json.length
  }

  private reject(reason: RejectionReason, detail: string, hash: string | null, action: string | null): void {
    const rejection: Rejection = {
      EE_EVENT_TYPE: 'NOTIFICATION',
      EE_PAYLOAD_PATH: [this.server.core.alias, null, null, null],
      EE_TIMESTAMP: new Date().toISOString(),
      NOTIFICATION_TYPE: NotificationType.EXCEPTION,
      NOTIFICATION_CODE: NotificationCode.COMM_RECEIVED_BAD_COMMAND,
      NOTIFICATION: `Command rejected (${reason}): ${detail}`,
      REASON: reason,
      COMMAND_HASH: hash,
      ACTION: action,
    }
    if (hash !== null && reason !== 'REPLAY') this.keepAnswer(hash, rejection)
    this.enqueue(rejection)
  }

  /** Queues a frame item; `json` is its canonical JSON in UTF-8 when already made. */
  enqueue(object: object, json: Buffer = Buffer.from(canonicalJson(object)), subscriptionItem = false): void {
    if (this.disposed) return
    this.queue.push({object: object as Record<string, unknown>, json, sub: subscriptionItem})
    if (this.queue.length > this.server.stats.maxQueueLength) this.server.stats.maxQueueLength = this.queue.length
    if (subscriptionItem) this.queuedSubscriptionItems++
    this.scheduleFlush()
  }

  /**
   * Removes queued subscription items; returns the first dropped seq. A slow reader's fallback to the
   * journal (`forFallback`) keeps a reset gap: the journal could not make it again.
   */
  private dropQueuedSubscriptionItems(forFallback = false): number | undefined {
    let first: number | undefined
    let kept = 0
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const item = this.queue[i]!
      if (!item.sub) continue
      const gap = item.object.EE_EVENT_TYPE === 'R1_GAP' ? item.object.REASON : undefined
      if (forFallback && gap === 'reset') {
        kept++
        continue
      }
      // a dropped retention/missing gap is found again when the journal is read from its FROM_SEQ
      const seq = gap === undefined ? item.object.EE_MESSAGE_SEQ : gap === 'reset' ? undefined : item.object.FROM_SEQ
      if (typeof seq === 'number') first = seq
      this.queue.splice(i, 1)
    }
    this.queuedSubscriptionItems = kept
    return first
  }

  private scheduleFlush(delayMs = 0): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    const run = () => {
      this.flushScheduled = false
      this.flushTimer = undefined
      this.flush()
    }
    if (delayMs > 0) this.flushTimer = setTimeout(run, delayMs)
    else setImmediate(run)
  }

  private flush(): void {
    if (this.disposed || this.queue.length === 0) return
    if (!this.transport.open) return
    // Socket busy: let items accumulate and go out as one signed batch (a local socket drains the
    // high-water mark in a millisecond or two: a longer wait would leave it idle).
    if (this.transport.bufferedAmount > this.server.highWater) {
      this.scheduleFlush(1)
      return
    }
    const identity = this.server.options.identity
    let frame: string | Buffer
    let taken = 1
    const first = this.queue[0]!
    if (this.queue.length === 1 || first.json.length > MAX_BATCH_BYTES) {
      frame = signCanonical(signingCanonical(first.object), identity).text
    } else {
      let bytes = first.json.length
      while (taken < this.queue.length && bytes + this.queue[taken]!.json.length < MAX_BATCH_BYTES) bytes += this.queue[taken++]!.json.length + 1
      frame = taken === 1 ? signCanonical(signingCanonical(first.object), identity).text : encodeBatch(this.queue.slice(0, taken).map((i) => i.json), identity).frame
    }
    this.server.options.history?.flush?.()
    const sent = this.queue.splice(0, taken)
    for (const item of sent) if (item.sub) this.queuedSubscriptionItems--
    this.server.stats.framesSent++
    if (taken > 1) this.server.stats.batchesSent++
    this.transport.send(frame)
    if (this.queue.length > 0) this.scheduleFlush()
    // a reader catching up from the journal gets its next page as soon as there is room, not after a fixed wait
    if (this.subscription?.mode === 'history' && this.queuedSubscriptionItems < 100) {
      if (this.wakePump) this.wakePump()
      else void this.pump()
    }
  }
}
