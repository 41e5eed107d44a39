import {describe, expect, it} from 'vitest'
import {brokerOfFlag, brokerTargets} from '../../src/deploy/discover.js'
import {resolveTargets} from '../../src/deploy/targets.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {parseTags} from '../../src/protocol/tags.js'
import {brokerClientId} from '../../src/transport/mqtt.js'

const node = generateIdentity().address
const fleet = {name: 'fleet', url: 'mqtts://broker.example:8883', user: 'cli', passwordFile: '/p/broker.pass', root: 'fleet/a'}

describe('targets on a broker', () => {
  it('a config.yaml target with `broker` is reached at the broker URL, its broker kept', () => {
    const [target] = resolveTargets({edge: {address: node, broker: fleet}}, {target: ['edge']})
    expect(target).toEqual({name: 'edge', url: fleet.url, address: node, broker: fleet})
  })

  it('--broker takes a URL or a configured name; an unknown name gets a did-you-mean, a URL with credentials is refused', () => {
    expect(brokerOfFlag('mqtt://127.0.0.1:1883', {})).toEqual({url: 'mqtt://127.0.0.1:1883'})
    expect(brokerOfFlag('fleet', {fleet})).toBe(fleet)
    expect(() => brokerOfFlag('flet', {fleet})).toThrow(/Unknown broker "flet". Did you mean "fleet"/)
    expect(() => brokerOfFlag('mqtt://u:p@127.0.0.1:1883', {})).toThrow(/not in the URL/)
    expect(() => brokerOfFlag('https://127.0.0.1', {})).toThrow(/mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\//)
  })

  it('--broker with --address names those nodes; bad combinations are usage errors (2)', async () => {
    const options = {connectTimeoutMs: 1000}
    expect(await brokerTargets({broker: 'fleet', address: [node, node]}, {fleet}, options)).toEqual([{name: node.slice(0, 12), url: fleet.url, address: node, broker: fleet}])
    await expect(brokerTargets({broker: 'fleet', address: ['0xai_nope']}, {fleet}, options)).rejects.toMatchObject({exitCode: 2})
    await expect(brokerTargets({broker: 'fleet', address: [node], all: true}, {fleet}, options)).rejects.toMatchObject({exitCode: 2})
    await expect(brokerTargets({broker: 'fleet', target: ['edge']}, {fleet}, options)).rejects.toMatchObject({exitCode: 2})
    await expect(brokerTargets({broker: 'fleet'}, {fleet}, options)).rejects.toMatchObject({exitCode: 2, message: expect.stringMatching(/--address .* or --all/)})
  })

  it('tags are k=v with a safe key; client ids fit MQTT 3.1.1 (23 characters)', () => {
    expect(parseTags(['site=lab', 'a.b-c_d=x.y-1'])).toEqual({site: 'lab', 'a.b-c_d': 'x.y-1'})
    for (const bad of ['noequals', '=v', 'role=', 'k=x=y', 'sp ace=v', `${'k'.repeat(201)}=v`, 'site=lab site=north']) expect(() => parseTags([bad])).toThrow(/--tag/)
    expect(() => parseTags(['site=lab', 'site=north'])).toThrow(/twice/)
    expect(brokerClientId('n', node)).toMatch(/^r1n[A-Za-z0-9_-]{20}$/)
    expect(brokerClientId('n', node)).toBe(brokerClientId('n', node))
  })
})
