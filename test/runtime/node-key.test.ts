import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {serveNode} from '../../src/runtime/node-main.js'

let dataDir: string
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'r1-node-key-test-'))
})
afterEach(async () => rm(dataDir, {recursive: true, force: true}))

describe('a corrupt node key', () => {
  it("names the node's remedy (move the node key aside; the address changes), not `r1 keys generate --force`", async () => {
    const key = join(dataDir, 'node-key.pem')
    await writeFile(key, 'not a key\n')
    const signal = AbortSignal.abort()
    const error = await serveNode({host: '127.0.0.1', port: 0, dataDir}, {json: true, signal, note: () => undefined}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(R1Error)
    const {code, hint, message} = error as R1Error
    expect(code).toBe('KEY_INVALID')
    expect(message).toContain(key)
    expect(hint).not.toMatch(/keys generate/)
    expect(hint).toContain(`mv ${key} ${key}.bad`)
    expect(hint).toMatch(/new address: every client that pins it .* must be updated/)
    expect(await readFile(key, 'utf8')).toBe('not a key\n') // nothing replaced it
  })
})
