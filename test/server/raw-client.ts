import WebSocket from 'ws'
import type {FrameItem} from '../../src/protocol/messages.js'
import {decodeNodeFrame} from '../../src/protocol/wire.js'

/** A bare ws client speaking r1.v1 without the Session's help: sends any text, collects verified items. */
export class RawClient {
  readonly items: FrameItem[] = []
  readonly invalid: string[] = []
  closeCode?: number
  closeReason?: string
  private waiters: Array<() => void> = []

  private constructor(
    readonly ws: WebSocket,
    readonly nodeAddress: string,
  ) {
    ws.on('message', (data) => {
      const frame = decodeNodeFrame(data.toString(), nodeAddress)
      if (frame.ok) this.items.push(...frame.items)
      else this.invalid.push(frame.reason)
      this.wake()
    })
    ws.on('close', (code, reason) => {
      this.closeCode = code
      this.closeReason = reason.toString()
      this.wake()
    })
    ws.on('error', () => undefined)
  }

  static async connect(url: string, nodeAddress: string, options: WebSocket.ClientOptions = {}): Promise<RawClient> {
    const ws = new WebSocket(url, 'r1.v1', {maxPayload: 4 * 1024 * 1024, ...options})
    // Listen before 'open': the hello may arrive in the same packet as the upgrade.
    const client = new RawClient(ws, nodeAddress)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    await client.waitFor((i) => i.EE_EVENT_TYPE === 'R1_HELLO')
    return client
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  send(text: string | Buffer): void {
    this.ws.send(text)
  }

  /** Waits until an item matches (or the connection closes / times out). */
  async waitFor(predicate: (item: FrameItem) => boolean, timeoutMs = 15_000): Promise<FrameItem> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.items.find(predicate)
      if (found) return found
      if (this.closeCode !== undefined) throw new Error(`connection closed (${this.closeCode} ${this.closeReason})`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error('timed out waiting for a frame')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Waits until `count` items match. */
  async waitForCount(predicate: (item: FrameItem) => boolean, count: number, timeoutMs = 30_000): Promise<FrameItem[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.items.filter(predicate)
      if (found.length >= count) return found
      if (this.closeCode !== undefined) throw new Error(`connection closed (${this.closeCode} ${this.closeReason}) after ${found.length}/${count}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out: ${found.length}/${count} frames`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200))
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  async waitClosed(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs
    while (this.closeCode === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    if (this.closeCode === undefined) throw new Error('still open')
    return this.closeCode
  }

  close(): void {
    this.ws.terminate()
  }
}

export const rejectionFor = (hash: string | null) => (item: FrameItem) =>
  item.EE_EVENT_TYPE === 'NOTIFICATION' && (item as {NOTIFICATION_CODE?: number}).NOTIFICATION_CODE === -5000 && (item as {COMMAND_HASH?: unknown}).COMMAND_HASH === hash
export const replyFor = (hash: string) => (item: FrameItem) => item.EE_EVENT_TYPE === 'R1_REPLY' && item.COMMAND_HASH === hash
