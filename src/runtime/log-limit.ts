/**
 * Per-instance rate limit of plugin log lines: a token bucket (burst, then a sustained rate). Lines
 * over it are dropped and counted; the count is reported once lines flow again, so a chatty plugin
 * cannot flood the journal and a reader still learns that lines are missing.
 */
export interface LogRate {
  /** Lines an instance may log at once. */
  burst: number
  /** Sustained lines per second. */
  perSecond: number
}

export const DEFAULT_LOG_RATE: LogRate = {burst: 500, perSecond: 100}

export class LogLimiter {
  private tokens: number
  private last: number
  /** Lines dropped since the last report. */
  private dropped = 0

  constructor(
    private readonly rate: LogRate,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = rate.burst
    this.last = now()
  }

  /**
   * Takes one line: `{ok: false}` when it is dropped; `{ok: true, dropped}` when it may go out,
   * with the lines dropped before it (report them first).
   */
  take(): {ok: false} | {ok: true; dropped: number} {
    const now = this.now()
    this.tokens = Math.min(this.rate.burst, this.tokens + ((now - this.last) / 1000) * this.rate.perSecond)
    this.last = now
    if (this.tokens < 1) {
      this.dropped++
      return {ok: false}
    }
    this.tokens--
    const dropped = this.dropped
    this.dropped = 0
    return {ok: true, dropped}
  }
}
