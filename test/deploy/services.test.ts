import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parseStoreValue, readValueArg} from '../../src/deploy/services.js'
import {readSecretFrom} from '../../src/secrets/input.js'

describe('values given to r1 cstore set/hset', () => {
  it('are JSON, or text with --string; text that is not JSON is a usage error naming --string', () => {
    expect(parseStoreValue('{"a": [1, null]}')).toEqual({a: [1, null]})
    expect(parseStoreValue('007', true)).toBe('007')
    expect(parseStoreValue('"007"')).toBe('007')
    expect(parseStoreValue('null')).toBeNull()
    expect(() => parseStoreValue('007')).toThrow(expect.objectContaining({exitCode: 2, code: 'VALUE_NOT_JSON', hint: expect.stringContaining('--string')}))
  })

  it('`-` reads stdin, one trailing newline dropped, at most what one command carries', async () => {
    expect(await readValueArg('-', Readable.from([Buffer.from('[1,\n2]\n')]))).toBe('[1,\n2]')
    expect(await readValueArg('plain')).toBe('plain')
    await expect(readValueArg('-', Readable.from([Buffer.alloc(300 * 1024, 0x61)]))).rejects.toMatchObject({exitCode: 2, code: 'VALUE_TOO_LARGE'})
  })
})

describe('the secret of an R1FS file', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'r1-secret-from-'))
  })
  afterAll(() => rm(dir, {recursive: true, force: true}))

  it('comes from a file (trailing newline dropped) or an environment variable, or is absent', async () => {
    await writeFile(join(dir, 'secret'), 'horse battery\n')
    expect(await readSecretFrom({'secret-file': join(dir, 'secret')})).toBe('horse battery')
    process.env.R1_TEST_FILE_SECRET = 'from env'
    try {
      expect(await readSecretFrom({'secret-env': 'R1_TEST_FILE_SECRET'})).toBe('from env')
    } finally {
      delete process.env.R1_TEST_FILE_SECRET
    }
    expect(await readSecretFrom({})).toBeUndefined()
  })

  it('an empty, unreadable or doubly given secret is a usage error', async () => {
    await writeFile(join(dir, 'empty'), '\n')
    await expect(readSecretFrom({'secret-file': join(dir, 'empty')})).rejects.toMatchObject({exitCode: 2, code: 'SECRET_VALUE_EMPTY'})
    await expect(readSecretFrom({'secret-env': 'R1_TEST_UNSET_SECRET'})).rejects.toMatchObject({exitCode: 2, code: 'SECRET_VALUE_EMPTY'})
    await expect(readSecretFrom({'secret-file': join(dir, 'missing')})).rejects.toMatchObject({exitCode: 2, code: 'SECRET_UNREADABLE'})
    await expect(readSecretFrom({'secret-file': 'x', 'secret-env': 'Y'})).rejects.toMatchObject({exitCode: 2, code: 'SECRET_SOURCES'})
  })
})
