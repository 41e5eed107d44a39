import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {deflateSync} from 'node:zlib'
import secp256k1 from 'secp256k1'
import {describe, expect, it} from 'vitest'
import {
  BASE_FIELDS,
  addressPublicKey,
  applyDefaults,
  checkInstanceConfig,
  checkNodeAddress,
  checkValue,
  decodeCode,
  didYouMean,
  levenshtein,
  openPluginSpec,
  pluginSchemas,
  pluginSpec,
} from '../../src/manifest/index.js'

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/vectors/ratio1-signing.json'), 'utf8')) as {
  keys: Record<string, {address: string; address_legacy_prefix: string; public_key_compressed_hex: string}>
  positives: Array<{message?: Record<string, unknown>}>
}

describe('did you mean', () => {
  it('counts a transposition as one edit', () => {
    expect(levenshtein('prot', 'port')).toBe(1)
    expect(levenshtein('kitten', 'sitting')).toBe(3)
    expect(levenshtein('', 'abc')).toBe(3)
  })
  it('suggests close names only', () => {
    expect(didYouMean('piplines', ['name', 'pipelines', 'plugins'])).toBe('did you mean "pipelines"?')
    expect(didYouMean('threshhold', ['THRESHOLD', 'UNIT'])).toBe('did you mean "THRESHOLD"?')
    expect(didYouMean('foo', ['url', 'address'])).toBeUndefined()
  })
})

describe('node addresses', () => {
  it('accepts every key address of the Ratio1 reference vectors', () => {
    for (const key of Object.values(vectors.keys)) {
      expect(checkNodeAddress(key.address)).toBeUndefined()
      expect(Buffer.from(addressPublicKey(key.address)!).toString('hex')).toBe(key.public_key_compressed_hex)
    }
  })
  it('accepts freshly generated keys of both parities', () => {
    const seen = new Set<number>()
    for (let i = 1; i <= 16; i++) {
      const priv = Buffer.alloc(32)
      priv[31] = i
      const pub = secp256k1.publicKeyCreate(priv, true)
      seen.add(pub[0])
      expect(checkNodeAddress('0xai_' + Buffer.from(pub).toString('base64url'))).toBeUndefined()
    }
    expect([...seen].sort()).toEqual([2, 3])
  })
  it('decides "on the curve" exactly as libsecp256k1 does', () => {
    let rejected = 0
    for (let i = 0; i < 200; i++) {
      const key = Buffer.alloc(33)
      key[0] = 2 + (i % 2)
      key.writeUInt32BE(Math.imul(i + 1, 2654435761) >>> 0, 29)
      key.writeUInt32BE(i, 1)
      const expected = secp256k1.publicKeyVerify(key)
      if (!expected) rejected++
      expect({i, ok: checkNodeAddress('0xai_' + key.toString('base64url')) === undefined}).toEqual({i, ok: expected})
    }
    expect(rejected).toBeGreaterThan(50) // about half of all x have no point
  })

  it('explains what is wrong', () => {
    const legacy = Object.values(vectors.keys)[0].address_legacy_prefix
    expect(checkNodeAddress(legacy)).toMatch(/legacy prefix aixp_/)
    expect(checkNodeAddress('0xai_abc')).toMatch(/44 characters/)
    expect(checkNodeAddress('0xai_' + 'A'.repeat(43) + '=')).toMatch(/not URL-safe base64/)
    expect(checkNodeAddress('0xai_' + Buffer.alloc(33, 4).toString('base64url'))).toMatch(/0x04, expected 0x02 or 0x03/)
    const offCurve = Buffer.alloc(33)
    offCurve[0] = 2
    offCurve[32] = 5 // x = 5: x³ + 7 is not a square mod p
    expect(checkNodeAddress('0xai_' + offCurve.toString('base64url'))).toMatch(/not a point on the secp256k1 curve/)
  })
})

describe('instance config checks', () => {
  const runner = pluginSpec('PROCESS_APP_RUNNER')!

  it('knows the built-ins with the base keys', () => {
    const schemas = pluginSchemas()
    expect(Object.keys(schemas)).toEqual(['CUSTOM_EXEC_01', 'PROCESS_APP_RUNNER'])
    for (const key of Object.keys(BASE_FIELDS)) expect(schemas.CUSTOM_EXEC_01.fields[key]).toBeDefined()
    expect(BASE_FIELDS.ALLOW_EMPTY_INPUTS.default).toBe(true)
    expect(BASE_FIELDS.PROCESS_DELAY.default).toBe(1)
    expect(BASE_FIELDS.DISABLED.default).toBe(false)
  })

  it('accepts a full PROCESS_APP_RUNNER config in any key case', () => {
    const problems = checkInstanceConfig(runner, {
      command: ['node', 'server.js'],
      Cwd: 'app',
      ENV: {PORT: 3000, DEBUG: true, NAME: 'x'},
      restart_policy: 'no',
      health_check: {type: 'delay', delay: 2},
      output_throttle: 1,
    })
    expect(problems).toEqual([])
  })

  it('compares HEALTH_CHECK keys in UPPERCASE: either case passes, two spellings of one key do not', () => {
    expect(checkInstanceConfig(runner, {COMMAND: 'x', HEALTH_CHECK: {TYPE: 'tcp', PORT: 80, HOST: 'db'}})).toEqual([])
    expect(checkInstanceConfig(runner, {COMMAND: 'x', health_check: {Type: 'tcp', port: 80}})).toEqual([])
    const twice = checkInstanceConfig(runner, {COMMAND: 'x', HEALTH_CHECK: {type: 'tcp', TYPE: 'http', port: 80}})
    expect(twice.map((p) => [p.rule, p.path])).toEqual([['config-duplicate-key', ['HEALTH_CHECK', 'TYPE']]])
    // a suggestion comes in the case the user writes in
    expect(checkInstanceConfig(runner, {COMMAND: 'x', HEALTH_CHECK: {type: 'tcp', prot: 80}})[0].suggestion).toBe('did you mean "port"?')
    expect(checkInstanceConfig(runner, {COMMAND: 'x', HEALTH_CHECK: {TYPE: 'tcp', PROT: 80}})[0].suggestion).toBe('did you mean "PORT"?')
  })

  it('accepts the instance keys the runtime honours: FORCED_PAUSE and PROCESS_TIMEOUT', () => {
    expect(checkInstanceConfig(runner, {COMMAND: 'x', forced_pause: true, PROCESS_TIMEOUT: 0.5})).toEqual([])
    expect(checkInstanceConfig(runner, {COMMAND: 'x', FORCED_PAUSE: 'yes', PROCESS_TIMEOUT: -1}).map((p) => [p.rule, p.path])).toEqual([
      ['config-type', ['FORCED_PAUSE']],
      ['config-range', ['PROCESS_TIMEOUT']],
    ])
    // no default: the node's own hang timeout applies when it is unset
    expect(applyDefaults('PROCESS_APP_RUNNER', {COMMAND: 'x'})).not.toHaveProperty('PROCESS_TIMEOUT')
  })

  it('reports nested problems with their path', () => {
    const problems = checkInstanceConfig(runner, {COMMAND: ['python3', 3], HEALTH_CHECK: {type: 'http'}})
    expect(problems.map((p) => [p.rule, p.path])).toEqual([
      ['config-type', ['COMMAND', 1]],
      ['config-required', ['HEALTH_CHECK']],
    ])
  })

  it('reports every missing required key and never a duplicate for one spelling', () => {
    expect(checkInstanceConfig(runner, {}).map((p) => p.rule)).toEqual(['config-required'])
    expect(checkInstanceConfig(runner, {command: 'a', COMMAND: 'b'}).map((p) => p.rule)).toEqual(['config-duplicate-key'])
  })

  it('checks only base keys for unknown signatures (deployed bundles)', () => {
    const open = openPluginSpec('SOMETHING_DEPLOYED')
    expect(checkInstanceConfig(open, {ANY: 1, process_delay: 2})).toEqual([])
    expect(checkInstanceConfig(open, {process_delay: 'x'}).map((p) => p.rule)).toEqual(['config-type'])
  })

  it('checks nullable, integer, enum and length constraints', () => {
    expect(checkValue({type: 'integer'}, 2.5)[0].rule).toBe('config-type')
    expect(checkValue({type: 'number'}, Number.NaN)[0].rule).toBe('config-type')
    expect(checkValue({type: 'object', nullable: true}, null)).toEqual([])
    expect(checkValue({type: 'object'}, null)[0].message).toMatch(/expected object, got null/)
    expect(checkValue({type: 'array', max: 1}, [1, 2])[0].rule).toBe('config-range')
    expect(checkValue({type: 'string', enum: ['on', 'off']}, 'offf')[0]).toMatchObject({rule: 'config-enum', suggestion: 'did you mean "off"?'})
  })
})

describe('CUSTOM_EXEC_01 CODE', () => {
  const exec = pluginSpec('CUSTOM_EXEC_01')!
  it('decodes base64 of zlib as Ratio1 sends it, and leaves plain JavaScript alone', () => {
    const body = 'return {ANSWER: 42}'
    expect(decodeCode(deflateSync(body).toString('base64'))).toBe(body)
    expect(decodeCode(body)).toBe(body)
    expect(decodeCode('noopnoop')).toBe('noopnoop')
  })
  it('checks the syntax of both forms without running the code', () => {
    ;(globalThis as {ran?: boolean}).ran = false
    expect(checkInstanceConfig(exec, {CODE: 'globalThis.ran = true; return await plugin.x'})).toEqual([])
    expect((globalThis as {ran?: boolean}).ran).toBe(false)
    expect(checkInstanceConfig(exec, {CODE: deflateSync('return (').toString('base64')})[0].rule).toBe('config-value')
  })
})

describe('applyDefaults', () => {
  const manifest = {
    name: 'p',
    version: '1.0.0',
    plugins: {TEMP: {entry: 'a.ts', config: {THRESHOLD: {type: 'number' as const, default: 30}, process_delay: {type: 'number' as const, default: 5}, TAGS: {type: 'array' as const, default: ['a']}}, allow_unknown_config: false}},
    pipelines: {},
    brokers: {},
    targets: {},
    environments: {},
  }

  it('uppercases keys and fills defaults of a built-in, a project plugin, or base keys only', () => {
    expect(applyDefaults('CUSTOM_EXEC_01', {code: 'return 1'})).toEqual({
      CODE: 'return 1',
      PROCESS_DELAY: 1,
      ALLOW_EMPTY_INPUTS: true,
      DISABLED: false,
      RESTART_BACKOFF_MAX: 60,
      SHUTDOWN_TIMEOUT: 5,
      FORCED_PAUSE: false,
    })
    expect(applyDefaults('UNKNOWN_ONE', {x: 1})).toMatchObject({X: 1, PROCESS_DELAY: 1})
    expect(applyDefaults('TEMP', {threshold: 10}, manifest)).toMatchObject({THRESHOLD: 10, PROCESS_DELAY: 5, TAGS: ['a'], DISABLED: false})
  })

  it('writes nested fixed keys UPPERCASE and leaves map keys (ENV) as written', () => {
    const config = applyDefaults('PROCESS_APP_RUNNER', {command: 'x', env: {path: '/bin', Home: '/h'}, health_check: {type: 'http', Port: 80, path: '/up'}})
    expect(config.HEALTH_CHECK).toEqual({TYPE: 'http', PORT: 80, PATH: '/up'})
    expect(config.ENV).toEqual({path: '/bin', Home: '/h'})
    expect(applyDefaults('PROCESS_APP_RUNNER', config)).toEqual(config)
  })

  it('gives each instance its own copy of object defaults', () => {
    const a = applyDefaults('TEMP', {}, manifest)
    const b = applyDefaults('TEMP', {}, manifest)
    ;(a.TAGS as string[]).push('b')
    expect(b.TAGS).toEqual(['a'])
  })
})
