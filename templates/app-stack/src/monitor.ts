import {definePlugin} from 'r1/plugin'
import type {Reading} from './feed.js'

/** FEED_MONITOR's instance config as declared in config.yaml. */
export interface MonitorConfig {
  URL: string
  MAX_AGE: number
  TIMEOUT: number
}

type FeedStatus = 'up' | 'stale' | 'down'

// The last status seen, per instance, to notify on changes only.
const lastStatus = new WeakMap<object, FeedStatus>()

export default definePlugin<MonitorConfig>({
  async process(ctx) {
    const started = performance.now()
    let status: FeedStatus
    let reading: Reading | undefined
    let problem = ''
    try {
      const response = await fetch(ctx.config.URL, {signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.config.TIMEOUT * 1000)])})
      if (!response.ok) throw new Error(`HTTP ${response.status}`)
      reading = (await response.json()) as Reading
      const age = Date.now() / 1000 - reading.TIME
      status = age > ctx.config.MAX_AGE ? 'stale' : 'up'
      if (status === 'stale') problem = `last reading is ${age.toFixed(1)} s old`
    } catch (error) {
      status = 'down'
      problem = (error as Error).message
    }
    const previous = lastStatus.get(ctx)
    lastStatus.set(ctx, status)
    if (status !== previous && (status !== 'up' || previous !== undefined)) {
      ctx.notify(
        status === 'up'
          ? {message: `${ctx.config.URL} is back up`}
          : {message: `${ctx.config.URL} is ${status}: ${problem}`, type: 'ABNORMAL FUNCTIONING'},
      )
    }
    return {
      FEED: ctx.config.URL,
      STATUS: status,
      LATENCY_MS: Math.round(performance.now() - started),
      ...(reading ? {VALUE: reading.VALUE, SEQ: reading.SEQ} : {}),
    }
  },
})
