import type {RunnerEvent} from '../plugin/runner.js'
import type {ChildMessage} from './ipc.js'
import {formatBytes} from '../ui/bytes.js'

/**
 * The instance host's side of the IPC channel. One `process.send` per event capped an instance at
 * ~10 k events/s (each is a JSON encode and a pipe write), so messages queued during one event-loop
 * turn go out together as one `{t: 'batch'}` message, in order. Back-pressure, two ways: when
 * `process.send` reports the channel backed up, nothing more is written until that write completes;
 * and at most `maxUnackedBatches` batches are out before the parent acknowledges them after its own
 * event-loop turn (so a flooding instance goes at the node's pace, and the node's journal and
 * subscribers keep up). The host's process loop waits while blocked. What plugin code emits while
 * blocked (one huge `process` call, timers) queues up to a bound, past which payloads, logs and
 * plain plugin notifications are dropped and counted in one ABNORMAL notification at the place of
 * the gap: memory stays bounded, and the loss is reported, never silent. The first message of an
 * event-loop turn is written at once; what follows it in that turn waits for the turn's end, so an
 * instance killed by a native crash or a blocked event loop loses the events it emitted after the
 * first in its last turn (`process.exit` flushes them).
 */

export interface OutboxOptions {
  /** Writes one message; false when the channel is backed up. `done` runs once it is written (or dropped). */
  write(message: ChildMessage, done: () => void): boolean
  /** A batch goes out as soon as it holds this many messages… */
  maxBatchMessages?: number
  /** …or this many bytes of payload JSON. */
  maxBatchBytes?: number
  /** While the channel is backed up, at most this many messages wait… */
  maxQueuedMessages?: number
  /** …and this many bytes; droppable events past either bound are dropped. */
  maxQueuedBytes?: number
  /** Batches written but not yet acknowledged by the parent (`ack`) before the host waits: the parent paces the host. */
  maxUnackedBatches?: number
}

/** Counts of what one gap dropped; they are reported in the notification that marks the gap. */
interface Gap {
  message: Extract<ChildMessage, {t: 'event'}>
  payloads: number
  logs: number
  notifications: number
}

/** Small messages (statuses, logs) are counted at this size against the byte bounds. */
const SMALL_MESSAGE_BYTES = 128

interface Entry {
  message: ChildMessage
  bytes: number
}

export class Outbox {
  private queue: Entry[] = []
  private queuedBytes = 0
  private scheduled = false
  /** The write the channel reported as backed up: nothing more goes out until it is done. */
  private blockedOn: number | undefined
  private unackedBatches = 0
  private readonly maxUnackedBatches: number
  private writes = 0
  private gap: Gap | undefined
  private drainWaiters: Array<() => void> = []
  private readonly maxBatchMessages: number
  private readonly maxBatchBytes: number
  private readonly maxQueuedMessages: number
  private readonly maxQueuedBytes: number
  /** Events dropped in all. */
  droppedTotal = 0

  constructor(private readonly options: OutboxOptions) {
    this.maxBatchMessages = options.maxBatchMessages ?? 1000
    this.maxBatchBytes = options.maxBatchBytes ?? 512 * 1024
    this.maxQueuedMessages = options.maxQueuedMessages ?? 50_000
    this.maxQueuedBytes = options.maxQueuedBytes ?? 32 * 1024 * 1024
    this.maxUnackedBatches = options.maxUnackedBatches ?? 2
  }

  /** True while the channel is backed up or the parent has not acknowledged enough batches. */
  get blocked(): boolean {
    return this.blockedOn !== undefined || this.unackedBatches >= this.maxUnackedBatches
  }

  /** The parent handled `batches` batches. */
  ack(batches: number): void {
    const wasBlocked = this.blocked
    this.unackedBatches = Math.max(0, this.unackedBatches - batches)
    if (wasBlocked && !this.blocked) this.unblocked()
  }

  /** Messages waiting to be written. */
  get pending(): number {
    return this.queue.length
  }

  /** Queues a message for the batch of this event-loop turn; `bytes` is its JSON size when known (payloads). */
  post(message: ChildMessage, bytes = SMALL_MESSAGE_BYTES): void {
    if (this.blocked && (this.queue.length >= this.maxQueuedMessages || this.queuedBytes + bytes > this.maxQueuedBytes) && this.drop(message)) return
    if (!this.blocked && !this.scheduled && this.queue.length === 0) {
      // the first message of a turn goes out at once, alone: no added latency, and an instance
      // that dies right after (process.exit, a native crash, a blocked loop) has still sent it
      this.push(message, bytes)
      this.flush(false)
      this.schedule()
      return
    }
    this.push(message, bytes)
    if (!this.blocked && (this.queue.length >= this.maxBatchMessages || this.queuedBytes >= this.maxBatchBytes)) this.flush(false)
    else this.schedule()
  }

  /**
   * Writes a message now, after everything queued (order is kept), even while the channel is backed
   * up: for what the parent needs at once (a `process` call started, a process group, a fatal error).
   * `then` runs once it is written.
   */
  postNow(message: ChildMessage, then?: () => void): void {
    this.push(message, SMALL_MESSAGE_BYTES)
    this.flush(true, then)
  }

  /** Writes everything queued now, whatever the back-pressure (the process is exiting: best effort). */
  flushAll(): void {
    this.flush(true)
  }

  /** Resolves once the channel is not backed up (the process loop waits here before the next call). */
  drained(): Promise<void> {
    if (!this.blocked) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  private push(message: ChildMessage, bytes: number): void {
    this.queue.push({message, bytes})
    this.queuedBytes += bytes
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.flush(false)
    })
  }

  /** Writes queued messages in batches until the queue is empty or, unless `force`, the channel is backed up. */
  private flush(force: boolean, then?: () => void): void {
    while (this.queue.length > 0 && (force || !this.blocked)) {
      // drops from here on mark a new gap, later in the stream
      this.gap = undefined
      const messages = this.takeBatch()
      const last = this.queue.length === 0
      const id = ++this.writes
      if (messages.length > 1) this.unackedBatches++
      const ok = this.options.write(messages.length === 1 ? messages[0] : {t: 'batch', messages}, () => {
        if (last) then?.()
        this.written(id)
      })
      if (!ok) this.blockedOn = id
    }
  }

  private takeBatch(): ChildMessage[] {
    let count = 0
    let bytes = 0
    while (count < this.queue.length && count < this.maxBatchMessages && bytes < this.maxBatchBytes) bytes += this.queue[count++].bytes
    this.queuedBytes -= bytes
    return this.queue.splice(0, count).map((entry) => entry.message)
  }

  private written(id: number): void {
    if (this.blockedOn !== id) return
    this.blockedOn = undefined
    if (!this.blocked) this.unblocked()
  }

  private unblocked(): void {
    for (const resolve of this.drainWaiters.splice(0)) resolve()
    if (this.queue.length > 0) this.schedule()
  }

  /** Drops a message that may be dropped (true), counting it in the current gap's notification. */
  private drop(message: ChildMessage): boolean {
    if (message.t !== 'event' && message.t !== 'payload') return false
    const event: RunnerEvent = message.t === 'payload' ? {kind: 'payload', data: message.data} : message.event
    // confirmations and runner reports (they carry a code or a command hash) are never dropped
    if (event.kind === 'notification' && (event.code !== undefined || event.commandHash !== undefined)) return false
    if (!this.gap) {
      const marker: Gap['message'] = {t: 'event', event: {kind: 'notification', type: 'ABNORMAL FUNCTIONING', message: ''}}
      this.gap = {message: marker, payloads: 0, logs: 0, notifications: 0}
      // the marker goes where the gap is; it may exceed the bound by this one message
      this.push(marker, SMALL_MESSAGE_BYTES)
    }
    const gap = this.gap
    if (event.kind === 'payload') gap.payloads++
    else if (event.kind === 'log') gap.logs++
    else gap.notifications++
    this.droppedTotal++
    const parts = [`${gap.payloads} payload(s)`, ...(gap.logs ? [`${gap.logs} log line(s)`] : []), ...(gap.notifications ? [`${gap.notifications} notification(s)`] : [])]
    gap.message.event = {
      kind: 'notification',
      type: 'ABNORMAL FUNCTIONING',
      message: `Dropped ${parts.join(', ')}: the instance emitted faster than the node took them (over ${this.maxQueuedMessages} events or ${formatBytes(this.maxQueuedBytes)} waiting)`,
      info: {DROPPED_PAYLOADS: gap.payloads, DROPPED_LOGS: gap.logs, DROPPED_NOTIFICATIONS: gap.notifications},
    }
    return true
  }
}
