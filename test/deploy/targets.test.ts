import {describe, expect, it} from 'vitest'
import {type EnvironmentMap, resolveTargets, type TargetMap} from '../../src/deploy/targets.js'
import {R1Error} from '../../src/errors.js'
import {generateIdentity} from '../../src/protocol/identity.js'

const A = generateIdentity().address
const B = generateIdentity().address
const configured: TargetMap = {
  'edge-a': {url: 'wss://10.0.0.5:7443', address: A},
  'edge-b': {url: 'ws://127.0.0.1:7444', address: B},
}

function failure(fn: () => unknown): R1Error {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(R1Error)
    return error as R1Error
  }
  throw new Error('expected an error')
}

describe('resolveTargets', () => {
  it('resolves named targets in the order given, once each', () => {
    const targets = resolveTargets(configured, {target: ['edge-b', 'edge-a', 'edge-b']})
    expect(targets.map((t) => t.name)).toEqual(['edge-b', 'edge-a'])
    expect(targets[1]).toEqual({name: 'edge-a', url: 'wss://10.0.0.5:7443', address: A})
  })

  it('--all takes every target, minus --exclude', () => {
    expect(resolveTargets(configured, {all: true}).map((t) => t.name)).toEqual(['edge-a', 'edge-b'])
    expect(resolveTargets(configured, {all: true, exclude: ['edge-a']}).map((t) => t.name)).toEqual(['edge-b'])
  })

  it('pairs ad hoc --node with --address, alongside named targets', () => {
    const targets = resolveTargets(configured, {target: ['edge-a'], node: ['ws://127.0.0.1:9000'], address: [B]})
    expect(targets).toEqual([
      {name: 'edge-a', url: 'wss://10.0.0.5:7443', address: A},
      {name: '127.0.0.1:9000', url: 'ws://127.0.0.1:9000', address: B},
    ])
    expect(resolveTargets(undefined, {node: ['ws://127.0.0.1:9000'], address: [B]})).toHaveLength(1)
  })

  it('takes the only configured target when none is named', () => {
    expect(resolveTargets({'edge-a': configured['edge-a']}, {}).map((t) => t.name)).toEqual(['edge-a'])
  })

  it('an unknown target is a usage error with a suggestion', () => {
    const error = failure(() => resolveTargets(configured, {target: ['edge-c']}))
    expect(error.exitCode).toBe(2)
    expect(error.code).toBe('UNKNOWN_TARGET')
    expect(error.message).toContain('Did you mean "edge-a"?')
    expect(error.hint).toContain('edge-a, edge-b')
    expect(failure(() => resolveTargets(configured, {all: true, exclude: ['edgeb']})).message).toContain('"edge-b"')
    expect(failure(() => resolveTargets(configured, {target: ['production']})).message).not.toContain('Did you mean')
  })

  it('rejects ambiguous or incomplete selections with the flag to use', () => {
    expect(failure(() => resolveTargets(configured, {})).message).toContain('--target <name> or --all')
    expect(failure(() => resolveTargets({}, {})).hint).toContain('--node')
    expect(failure(() => resolveTargets(configured, {node: ['ws://x:1']})).message).toContain('--address')
    expect(failure(() => resolveTargets(configured, {address: [A]})).message).toContain('--node')
    expect(failure(() => resolveTargets(configured, {all: true, target: ['edge-a']})).exitCode).toBe(2)
    expect(failure(() => resolveTargets(configured, {all: true, exclude: ['edge-a', 'edge-b']})).message).toContain('excluded')
  })

  it('checks URLs and addresses, naming where they come from', () => {
    expect(failure(() => resolveTargets(undefined, {node: ['http://x:1'], address: [A]})).message).toContain('ws:// or wss://')
    expect(failure(() => resolveTargets(undefined, {node: ['not a url'], address: [A]})).message).toContain('not a URL')
    const bad = failure(() => resolveTargets({e: {url: 'ws://x:1', address: '0xai_short'}}, {}))
    expect(bad.message).toContain('targets.e in config.yaml')
    expect(bad.exitCode).toBe(2)
    expect(failure(() => resolveTargets(configured, {target: ['edge-b'], node: ['ws://127.0.0.1:7444'], address: [B]})).message).toContain('same node')
  })
})

describe('resolveTargets with --tag and --env', () => {
  const [N1, N2, S1] = [generateIdentity().address, generateIdentity().address, generateIdentity().address]
  const fleet: TargetMap = {
    'north-1': {url: 'ws://127.0.0.1:7001', address: N1, tags: {site: 'north', tier: 'canary'}},
    'north-2': {url: 'ws://127.0.0.1:7002', address: N2, tags: {site: 'north'}},
    'south-1': {url: 'ws://127.0.0.1:7003', address: S1, tags: {site: 'south'}},
  }
  const environments: EnvironmentMap = {
    staging: {targets: ['south-1']},
    production: {tags: {site: 'north'}},
    mixed: {targets: ['south-1'], tags: {tier: 'canary'}},
  }
  const names = (selection: Parameters<typeof resolveTargets>[1]) => resolveTargets(fleet, selection, environments).map((t) => t.name)

  it('--tag keeps the targets carrying every tag given (AND), in config order, with no other flag needed', () => {
    expect(names({tag: ['site=north']})).toEqual(['north-1', 'north-2'])
    expect(names({tag: ['site=north', 'tier=canary']})).toEqual(['north-1'])
    expect(names({tag: ['site=north'], exclude: ['north-1']})).toEqual(['north-2'])
    expect(names({tag: ['site=north'], target: ['north-2']})).toEqual(['north-2'])
    expect(resolveTargets(fleet, {tag: ['site=south']})[0]).toEqual({name: 'south-1', url: 'ws://127.0.0.1:7003', address: S1, tags: {site: 'south'}})
  })

  it('--env takes the targets it names and those its tags match; --tag and --target narrow it', () => {
    expect(names({env: 'staging'})).toEqual(['south-1'])
    expect(names({env: 'production'})).toEqual(['north-1', 'north-2'])
    expect(names({env: 'mixed'})).toEqual(['north-1', 'south-1'])
    expect(names({env: 'production', tag: ['tier=canary']})).toEqual(['north-1'])
    expect(names({env: 'production', all: true})).toEqual(['north-1', 'north-2'])
    expect(names({env: 'production', target: ['north-2']})).toEqual(['north-2'])
  })

  it('bad tags, unknown environments and empty selections are usage errors that say what exists', () => {
    const malformed = failure(() => resolveTargets(fleet, {tag: ['site']}))
    expect(malformed.exitCode).toBe(2)
    expect(malformed.message).toContain('not name=value')
    expect(failure(() => resolveTargets(fleet, {tag: ['site=north', 'site=south']})).message).toContain('twice')

    const unknown = failure(() => resolveTargets(fleet, {env: 'prodution'}, environments))
    expect(unknown.code).toBe('UNKNOWN_ENVIRONMENT')
    expect(unknown.message).toContain('Did you mean "production"?')
    expect(unknown.hint).toContain('staging, production, mixed')
    expect(failure(() => resolveTargets(fleet, {env: 'staging'})).hint).toContain('defines no environments')

    const none = failure(() => resolveTargets(fleet, {tag: ['site=west']}))
    expect(none.code).toBe('NO_TARGET_MATCH')
    expect(none.hint).toContain('site=north, site=south, tier=canary')
    expect(failure(() => resolveTargets(fleet, {env: 'staging', tag: ['site=north']}, environments)).message).toContain('environment "staging" with tag site=north')

    const outside = failure(() => resolveTargets(fleet, {env: 'production', target: ['south-1']}, environments))
    expect(outside.exitCode).toBe(2)
    expect(outside.message).toContain('south-1 is not among the targets of environment "production"')
    expect(failure(() => resolveTargets(fleet, {tag: ['site=north'], node: ['ws://127.0.0.1:9000'], address: [A]})).message).toContain('--node does not go with --env or --tag')
  })
})
