import {describe, expect, it} from 'vitest'
import {NotificationCode, definePlugin, testPlugin} from '../../src/plugin/index.js'

describe('the health hook', () => {
  it('reports a change of answer as one PLUGIN_HEALTH notification; a throw or a malformed answer is failed', async () => {
    let answer: unknown = {status: 'ok'}
    const t = testPlugin(
      definePlugin({
        health() {
          if (answer instanceof Error) throw answer
          return answer as never
        },
      }),
    )
    expect(await t.health()).toEqual({status: 'ok'})
    answer = {status: 'degraded', reason: 'queue at 80%'}
    await t.health()
    await t.health() // the same answer again: no second notification
    expect(t.notifications).toEqual([{type: 'NORMAL', code: NotificationCode.PLUGIN_HEALTH, message: 'Health ok', info: {HEALTH: 'ok'}}, {type: 'ABNORMAL FUNCTIONING', code: NotificationCode.PLUGIN_HEALTH, message: 'Health degraded: queue at 80%', info: {HEALTH: 'degraded', REASON: 'queue at 80%'}}])
    answer = new Error('db down')
    expect(await t.health()).toEqual({status: 'failed', reason: 'health threw Error: db down'})
    answer = {status: 'fine'}
    expect((await t.health()).status).toBe('failed')
    answer = {status: 'ok'}
    await t.health()
    expect(t.notifications.at(-1)).toMatchObject({type: 'NORMAL', info: {HEALTH: 'ok'}})
  })
})

describe('the beforeUpdate hook', () => {
  const plugin = definePlugin<{MODE: string}>({
    beforeUpdate(ctx, next) {
      if (next === null) return {refuse: `${ctx.instanceId} holds data`}
      if (next.MODE === 'later') return {defer: 2, reason: 'busy'}
      if (next.MODE === 'bad') throw new Error('cannot parse MODE')
      if (next.MODE === 'silly') return {defer: -1}
    },
  })

  it('answers ok, refuse (with the reason) or defer (bounded to a positive delay); a throw refuses', async () => {
    const t = testPlugin(plugin, {config: {mode: 'now'}})
    expect(await t.beforeUpdate({mode: 'now'})).toEqual({action: 'ok'})
    expect(await t.beforeUpdate({mode: 'later'})).toEqual({action: 'defer', seconds: 2, reason: 'busy'})
    expect(await t.beforeUpdate({mode: 'silly'})).toEqual({action: 'defer', seconds: 1})
    expect(await t.beforeUpdate({mode: 'bad'})).toEqual({action: 'refuse', reason: 'beforeUpdate threw Error: cannot parse MODE'})
    expect(await t.beforeUpdate(null)).toEqual({action: 'refuse', reason: 'test-1 holds data'})
  })

  it('a plugin without the hook lets every update through', async () => {
    expect(await testPlugin(definePlugin({process() {}})).beforeUpdate({X: 1})).toEqual({action: 'ok'})
  })

  it('definePlugin refuses hooks that are not functions', () => {
    expect(() => definePlugin({health: 'ok'} as never)).toThrow(/"health" must be a function/)
    expect(() => definePlugin({beforeUpdate: {}} as never)).toThrow(/"beforeUpdate" must be a function/)
  })
})
