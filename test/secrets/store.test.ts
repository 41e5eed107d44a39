import {mkdtempSync, rmSync, writeFileSync, mkdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {generateIdentity} from '../../src/protocol/identity.js'
import {findSecretRefs, redactDeep, redactSecrets, resolveSecretRefs, secretNames} from '../../src/secrets/refs.js'
import {listSecrets, openSecret, readSecrets, removeSecret, sealedFor, setSecret} from '../../src/secrets/store.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'r1-secrets-'))
})
afterEach(() => rmSync(dir, {recursive: true, force: true}))

describe('secret store', () => {
  it('seals per target; a target re-keyed keeps only the new value and reports the dropped ones', async () => {
    const a = generateIdentity()
    const a2 = generateIdentity()
    await setSecret(dir, {name: 'edge-a', address: a.address}, 'DB_URL', 'v1')
    await setSecret(dir, {name: 'edge-a', address: a.address}, 'TOKEN', 't1')
    const file = await readSecrets(dir)
    expect(openSecret(file.targets['edge-a'].secrets.TOKEN, a)).toBe('t1')
    expect(listSecrets(file, {'edge-a': a.address}).map((e) => [e.name, e.stale])).toEqual([['DB_URL', false], ['TOKEN', false]])
    expect(listSecrets(file, {'edge-a': a2.address}).every((e) => e.stale)).toBe(true)
    const {dropped} = await setSecret(dir, {name: 'edge-a', address: a2.address}, 'DB_URL', 'v2')
    expect(dropped).toEqual(['TOKEN'])
    const after = await readSecrets(dir)
    expect(Object.keys(after.targets['edge-a'].secrets)).toEqual(['DB_URL'])
    expect(openSecret(after.targets['edge-a'].secrets.DB_URL, a2)).toBe('v2')
  })

  it('sealedFor gives a deploy the sealed values it asks for, or says which to set (exit 3)', async () => {
    const a = generateIdentity()
    await setSecret(dir, {name: 'edge-a', address: a.address}, 'DB_URL', 'v1')
    const file = await readSecrets(dir)
    const sealed = sealedFor(file, {name: 'edge-a', address: a.address}, ['DB_URL'])
    expect(Object.keys(sealed.DB_URL).sort()).toEqual(['data', 'sender'])
    expect(openSecret(sealed.DB_URL, a)).toBe('v1')
    expect(() => sealedFor(file, {name: 'edge-a', address: a.address}, ['DB_URL', 'TOKEN'])).toThrow(/TOKEN not set for target edge-a/)
    expect(() => sealedFor(file, {name: 'edge-a', address: generateIdentity().address}, ['DB_URL'])).toThrow(/DB_URL not set/)
  })

  it('a corrupt store is an error naming the file; removeSecret of an absent one is false', async () => {
    expect(await removeSecret(dir, 'edge-a', 'NOPE')).toBe(false)
    mkdirSync(join(dir, '.r1'))
    writeFileSync(join(dir, '.r1/secrets.json'), '{"version": 1, "targets": {"x": {"address": "nope", "secrets": {}}}}')
    await expect(readSecrets(dir)).rejects.toThrow(/secrets\.json is not a valid secrets file/)
    writeFileSync(join(dir, '.r1/secrets.json'), 'not json')
    await expect(readSecrets(dir)).rejects.toMatchObject({code: 'SECRETS_CORRUPT'})
  })

  it('refuses bad names and oversized values', async () => {
    const a = generateIdentity()
    await expect(setSecret(dir, {name: 'edge-a', address: a.address}, 'db-url', 'x')).rejects.toMatchObject({code: 'BAD_SECRET_NAME', exitCode: 2})
    await expect(setSecret(dir, {name: 'edge-a', address: a.address}, 'BIG', 'x'.repeat(65 * 1024))).rejects.toMatchObject({code: 'SECRET_TOO_LARGE'})
  })
})

describe('secret references', () => {
  const config = {
    THRESHOLD: 3,
    DB_URL: {secret: 'DB_URL'},
    ENV: {TOKEN: {SECRET: 'API_TOKEN'}, PLAIN: 'x', NOT_A_REF: {secret: 'A', other: 1}},
    LIST: [{secret: 'DB_URL'}],
  }

  it('are found at any depth, `secret` or `SECRET`, alone in their object', () => {
    expect(findSecretRefs(config)).toEqual([
      {path: ['DB_URL'], name: 'DB_URL'},
      {path: ['ENV', 'TOKEN'], name: 'API_TOKEN'},
      {path: ['LIST', 0], name: 'DB_URL'},
    ])
    expect(secretNames(config)).toEqual(['API_TOKEN', 'DB_URL'])
  })

  it('resolve to their values; missing ones are listed and left in place', () => {
    const {value, missing} = resolveSecretRefs(config, {DB_URL: 'postgres://x'})
    expect(value).toEqual({...config, DB_URL: 'postgres://x', LIST: ['postgres://x']})
    expect(missing).toEqual(['API_TOKEN'])
    expect(config.DB_URL).toEqual({secret: 'DB_URL'})
  })

  it('redact exact values in text, longest first, short ones left alone', () => {
    expect(redactSecrets('connect postgres://u:hunter2@db failed; pw hunter2; id 7', {DB_URL: 'postgres://u:hunter2@db', PW: 'hunter2', ID: '7'})).toBe(
      'connect [redacted:DB_URL] failed; pw [redacted:PW]; id 7',
    )
    // payloads: every string at any depth, keys included; numbers and short values untouched
    expect(redactDeep({A: ['x hunter2 y', {hunter2: 1, n: 7}], B: 'ok'}, {PW: 'hunter2', ID: '7'})).toEqual({A: ['x [redacted:PW] y', {'[redacted:PW]': 1, n: 7}], B: 'ok'})
  })
})
