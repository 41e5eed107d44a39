/**
 * A token bucket on an injected clock: `burst` at once, `perSecond` sustained. The one implementation
 * behind the per-connection command rate (connection.ts) and the per-instance log rate (log-limit.ts).
 * A clock that steps back refills nothing (and takes nothing away).
 */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = burst
    this.last = now
  }

  take(now: number): boolean {
    this.refill(now)
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** Refilled to `burst`: indistinguishable from a new bucket. */
  isFull(now: number): boolean {
    this.refill(now)
    return this.tokens >= this.burst
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.last) / 1000) * this.perSecond)
    this.last = Math.max(this.last, now)
  }
}
