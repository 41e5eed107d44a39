import {describe, expect, it} from 'vitest'
import {NotificationCode, definePlugin, isPlugin, testPlugin} from '../../src/plugin/index.js'

interface ThermoConfig {
  THRESHOLD: number
  UNIT?: string
}

const thermo = definePlugin<ThermoConfig>({
  init(ctx) {
    ctx.log('init', ctx.instanceId)
  },
  process(ctx) {
    const reading = 20 + ctx.iteration
    if (reading > ctx.config.THRESHOLD) ctx.notify({message: `hot: ${reading}`, type: 'ABNORMAL FUNCTIONING'})
    ctx.metrics({reading}, 'thermo')
    return {TEMPERATURE: reading, UNIT: ctx.config.UNIT ?? 'C', INPUTS: ctx.inputs.length}
  },
  command(_ctx, name, params) {
    if (name === 'ECHO') return params
    throw new Error(`unknown command ${name}`)
  },
  config(_ctx, next, previous) {
    if (next.THRESHOLD < 0) throw new Error(`THRESHOLD must be >= 0 (was ${previous.THRESHOLD})`)
  },
})

describe('definePlugin', () => {
  it('brands the plugin and rejects hooks that are not functions', () => {
    expect(isPlugin(thermo)).toBe(true)
    expect(isPlugin({process() {}})).toBe(false)
    expect(() => definePlugin({process: 42} as never)).toThrow(/"process" must be a function/)
    expect(() => definePlugin(null as never)).toThrow(/expects an object/)
  })
})

describe('testPlugin', () => {
  it('runs process and collects returned and emitted payloads, then PLUGIN_CONFIG_OK', async () => {
    const t = testPlugin(thermo, {config: {threshold: 25}})
    expect(t.config.THRESHOLD).toBe(25) // keys are uppercased as on a node
    const first = await t.process(['a', 'b'])
    expect(first.ok).toBe(true)
    expect(first.payloads).toEqual([
      {R1_KIND: 'METRICS', CATEGORY: 'thermo', METRICS: {reading: 21}},
      {TEMPERATURE: 21, UNIT: 'C', INPUTS: 2},
    ])
    expect(first.notifications.map((n) => n.code)).toEqual([NotificationCode.PLUGIN_CONFIG_OK])
    const second = await t.process()
    expect(second.notifications).toEqual([]) // PLUGIN_CONFIG_OK only after the first good process
    expect(t.logs).toEqual([{level: 'info', text: 'init test-1'}])
    expect(t.payloads).toHaveLength(4)
  })

  it('turns a throw in process into an EXCEPTION notification', async () => {
    const t = testPlugin(
      definePlugin({
        process() {
          throw new RangeError('sensor offline')
        },
      }),
    )
    const outcome = await t.process()
    expect(outcome.ok).toBe(false)
    expect(outcome.error).toBe('RangeError: sensor offline')
    expect(outcome.notifications).toMatchObject([{type: 'EXCEPTION', code: NotificationCode.PLUGIN_EXCEPTION, message: 'Exception in process: RangeError: sensor offline'}])
    expect(outcome.payloads).toEqual([])
  })

  it('answers commands with PLUGIN_INSTANCE_COMMAND_OK or its negative', async () => {
    const t = testPlugin(thermo, {config: {THRESHOLD: 25}})
    expect(await t.command('ECHO', {X: 1})).toEqual({ok: true, result: {X: 1}})
    expect(await t.command('NOPE')).toMatchObject({ok: false, error: 'Error: unknown command NOPE'})
    expect(t.notifications.map((n) => n.code)).toEqual([NotificationCode.PLUGIN_INSTANCE_COMMAND_OK, NotificationCode.PLUGIN_INSTANCE_COMMAND_FAILED])
    const silent = testPlugin(definePlugin({process: () => undefined}))
    const refused = await silent.command('ANY')
    expect(refused.ok).toBe(false)
    expect(refused.error).toMatch(/has no command handler/)
  })

  it('reconfigures live, keeps the previous config when the plugin rejects the next one', async () => {
    const t = testPlugin(thermo, {config: {THRESHOLD: 25}})
    await t.process()
    expect(await t.reconfigure({THRESHOLD: 30, UNIT: 'F'})).toEqual({ok: true})
    expect(t.config).toMatchObject({THRESHOLD: 30, UNIT: 'F'})
    const after = await t.process()
    expect(after.payloads.at(-1)).toMatchObject({UNIT: 'F'})
    expect(after.notifications.map((n) => n.code)).toEqual([NotificationCode.PLUGIN_CONFIG_OK])
    const rejected = await t.reconfigure({THRESHOLD: -1})
    expect(rejected.ok).toBe(false)
    expect(rejected.error).toMatch(/THRESHOLD must be >= 0 \(was 30\)/)
    expect(t.config.THRESHOLD).toBe(30)
    expect(t.notifications.at(-1)).toMatchObject({code: NotificationCode.PLUGIN_CONFIG_FAILED})
  })

  it('aborts ctx.signal before close runs', async () => {
    let abortedInClose: boolean | undefined
    const t = testPlugin(
      definePlugin({
        process: () => ({OK: true}),
        close(ctx) {
          abortedInClose = ctx.signal.aborted
        },
      }),
    )
    await t.process()
    expect(t.ctx.signal.aborted).toBe(false)
    expect(await t.close()).toEqual({ok: true})
    expect(abortedInClose).toBe(true)
  })

  it('reports a failing init instead of calling process', async () => {
    let processed = false
    const t = testPlugin(
      definePlugin({
        init() {
          throw new Error('no sensor')
        },
        process() {
          processed = true
        },
      }),
    )
    const outcome = await t.process()
    expect(outcome).toMatchObject({ok: false, error: 'Error: no sensor'})
    expect(processed).toBe(false)
    expect(t.notifications[0].message).toBe('Exception in init: Error: no sensor')
  })

  it('ignores a non-object return with a warning and rejects a non-object emit', async () => {
    const t = testPlugin(definePlugin({process: () => 42 as never}))
    const outcome = await t.process()
    expect(outcome.payloads).toEqual([])
    expect(t.logs[0]).toMatchObject({level: 'warn'})
    const bad = testPlugin(definePlugin({process: (ctx) => ctx.emit([1] as never)}))
    expect((await bad.process()).error).toMatch(/ctx.emit expects an object/)
  })
})
