// The embedded CStore holds its live data in memory: a program filling it (any local app or plugin can reach
// its HTTP API) gets CSTORE_FULL, and what was stored stays.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {LogCStore} from '../../src/services/cstore-log.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'r1-cstore-bound-'))
})
afterEach(() => rmSync(dir, {recursive: true, force: true}))

describe('the embedded CStore is bounded', () => {
  it('refuses what does not fit, counts overwrites and deletes, and keeps the bound across a restart', async () => {
    const store = await LogCStore.open(dir, {maxBytes: 1000})
    const big = 'x'.repeat(600)
    expect(await store.set('a', big)).toBe(true)
    await expect(store.set('b', big)).rejects.toMatchObject({code: 'CSTORE_FULL'})
    await expect(store.hset('h', 'f', big)).rejects.toMatchObject({code: 'CSTORE_FULL'})
    expect(await store.get('b')).toBeNull()
    expect(await store.set('a', 'y'.repeat(800))).toBe(true) // an overwrite counts only the difference
    // concurrent writes cannot pass the bound together
    const both = await Promise.allSettled([store.set('c', 'z'.repeat(150)), store.set('d', 'z'.repeat(150))])
    expect(both.filter((r) => r.status === 'rejected')).toHaveLength(1)
    expect(await store.set('a', null)).toBe(true) // a delete frees its bytes
    expect(await store.set('b', big)).toBe(true)
    await store.close()

    const reopened = await LogCStore.open(dir, {maxBytes: 1000})
    expect(await reopened.get('b')).toBe(big)
    await expect(reopened.hset('h', 'f', big)).rejects.toMatchObject({code: 'CSTORE_FULL'})
    expect(await reopened.hset('h', 'f', 'small')).toBe(true)
    await reopened.close()
  })
})
