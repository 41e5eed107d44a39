import {describe, expect, it} from 'vitest'
import {resolveTargets, type TargetMap} from '../../src/deploy/targets.js'
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
