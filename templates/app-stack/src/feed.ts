import {createServer, type Server} from 'node:http'
import {definePlugin} from 'r1/plugin'

/** SENSOR_FEED's instance config as declared in config.yaml. */
export interface FeedConfig {
  PORT: number
  BASE: number
}

/** What the feed serves at /latest and emits as a payload. */
export interface Reading {
  SEQ: number
  VALUE: number
  TIME: number
}

// One instance per process on a node, but tests may run several in one: keep state per context.
const feeds = new WeakMap<object, {server: Server; latest?: Reading}>()

export default definePlugin<FeedConfig>({
  async init(ctx) {
    const state: {server: Server; latest?: Reading} = {
      server: createServer((request, response) => {
        const found = request.url === '/latest' && state.latest
        response.writeHead(found ? 200 : 404, {'content-type': 'application/json'})
        response.end(JSON.stringify(found ? state.latest : {error: 'no reading yet'}))
      }),
    }
    await new Promise<void>((resolve, reject) => {
      state.server.once('error', reject)
      state.server.listen(ctx.config.PORT, '127.0.0.1', resolve)
    })
    feeds.set(ctx, state)
    ctx.log.info(`${ctx.instanceId} serving http://127.0.0.1:${ctx.config.PORT}/latest`)
  },

  process(ctx) {
    const state = feeds.get(ctx)!
    // A simulated reading around BASE; replace it with a real source.
    const value = Math.round((ctx.config.BASE + 5 * Math.sin(ctx.iteration / 3)) * 10) / 10
    state.latest = {SEQ: ctx.iteration, VALUE: value, TIME: Date.now() / 1000}
    return {...state.latest}
  },

  async close(ctx) {
    const state = feeds.get(ctx)
    if (!state) return
    state.server.closeAllConnections()
    await new Promise((resolve) => state.server.close(resolve))
    feeds.delete(ctx)
  },
})
