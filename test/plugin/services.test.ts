import {describe, expect, it} from 'vitest'
import {definePlugin, testPlugin} from '../../src/plugin/index.js'
import {PluginRunner} from '../../src/plugin/runner.js'

/** A plugin that uses every ctx.cstore and ctx.r1fs call; its payload reports what it read back. */
const archivist = definePlugin<{SECRET: string}>({
  async process(ctx) {
    const runs = ((await ctx.cstore.get<number>('runs')) ?? 0) + 1
    await ctx.cstore.set('runs', runs)
    await ctx.cstore.set('odd/key ü', {nested: [1, null, 'x']})
    await ctx.cstore.hset('readings', ctx.instanceId, {t: 21.5})
    await ctx.cstore.hset('readings', 'other', 7)
    const file = await ctx.r1fs.addFile(Buffer.from([0, 255, 1, 254]), {filename: 'bytes.bin'})
    const json = await ctx.r1fs.addJson({runs, list: [1, 2]}, {secret: ctx.config.SECRET})
    const yaml = await ctx.r1fs.addYaml({name: 'archivist', runs})
    const bytes = await ctx.r1fs.getFile(file)
    return {
      RUNS: runs,
      ODD: await ctx.cstore.get('odd/key ü'),
      MISSING: await ctx.cstore.get('never-set'),
      HGET: await ctx.cstore.hget('readings', ctx.instanceId),
      HGETALL: await ctx.cstore.hgetall('readings'),
      HKEYS: (await ctx.cstore.hkeys('readings')).sort(),
      EMPTY_HASH: await ctx.cstore.hgetall('no-such-hash'),
      FILE: {name: bytes?.filename, bytes: [...(bytes?.data ?? [])]},
      JSON: await ctx.r1fs.getJson(json, {secret: ctx.config.SECRET}),
      WRONG_SECRET: (await ctx.r1fs.getJson(json, {secret: 'not-it'})) ?? 'none',
      YAML: await ctx.r1fs.getYaml(yaml),
      DELETED: await ctx.r1fs.delete(file),
      DELETED_AGAIN: await ctx.r1fs.delete(file),
      GONE: (await ctx.r1fs.getFile(file)) ?? 'none',
    }
  },
})

describe('ctx.cstore and ctx.r1fs under testPlugin', () => {
  it('round-trip through the real embedded services, which close() stops', async () => {
    const t = testPlugin(archivist, {config: {SECRET: 's3cret-value'}, instanceId: 'arch-1'})
    const first = await t.process()
    expect(first.ok, first.error).toBe(true)
    expect(first.payloads[0]).toEqual({
      RUNS: 1,
      ODD: {nested: [1, null, 'x']},
      MISSING: null,
      HGET: {t: 21.5},
      HGETALL: {'arch-1': {t: 21.5}, other: 7},
      HKEYS: ['arch-1', 'other'],
      EMPTY_HASH: {},
      FILE: {name: 'bytes.bin', bytes: [0, 255, 1, 254]},
      JSON: {runs: 1, list: [1, 2]},
      WRONG_SECRET: 'none',
      YAML: {name: 'archivist', runs: 1},
      DELETED: true,
      DELETED_AGAIN: false,
      GONE: 'none',
    })
    // the store persists between process calls of one harness
    expect((await t.process()).payloads[0].RUNS).toBe(2)
    expect((await t.close()).ok).toBe(true)
  })

  it('a value JSON cannot carry and a missing filename are refused in the plugin, with the reason', async () => {
    const t = testPlugin(definePlugin({}))
    await expect(t.ctx.cstore.set('k', undefined as never)).rejects.toThrow(/undefined: store null to delete/)
    await expect(t.ctx.r1fs.addFile('x', {} as never)).rejects.toThrow(/needs a filename/)
    await t.close()
  })
})

describe('ctx.cstore without a service URL', () => {
  it('fails with an error naming the environment variable', async () => {
    const runner = new PluginRunner(definePlugin({}), {config: {}, instanceId: 'i', pipeline: 'p', signature: 'S', node: {address: '0xai_x', alias: 'x'}, onEvent: () => undefined})
    await expect(runner.ctx.cstore.get('k')).rejects.toThrow(/EE_CHAINSTORE_API_URL \(or CSTORE_API_URL\) is not set/)
    await expect(runner.ctx.r1fs.getFile('cid')).rejects.toThrow(/EE_R1FS_API_URL \(or R1FS_API_URL\) is not set/)
  })
})
