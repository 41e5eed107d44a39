// The ACL rules of the embedded broker, as pure functions: exact subscriptions only, `+` in a publish
// rule matching one non-empty level, and a topic root other than the default.
import {describe, expect, it} from 'vitest'
import {aclRules, mayPublish, maySubscribe} from '../../src/broker/acl.js'
import {generateIdentity} from '../../src/protocol/identity.js'

const [node, other, client] = [generateIdentity(), generateIdentity(), generateIdentity()].map((i) => i.address)

describe('broker ACLs', () => {
  const nodeRules = aclRules({name: 'n', role: 'node', address: node})
  const clientRules = aclRules({name: 'c', role: 'client', address: client}, 'fleet/eu')

  it('lets a node subscribe to its own config topic only, never through a wildcard', () => {
    expect(maySubscribe(nodeRules, `naeural/${node}/config`)).toBe(true)
    for (const filter of [`naeural/${other}/config`, 'naeural/+/config', 'naeural/#', `naeural/${node}/#`, 'naeural/ctrl', `naeural/${node}/payloads`]) expect(maySubscribe(nodeRules, filter), filter).toBe(false)
  })

  it("lets a node publish to the shared topics and any one client's targeted topic", () => {
    for (const topic of ['naeural/ctrl', 'naeural/notif', 'naeural/payloads', `naeural/${client}/payloads`]) expect(mayPublish(nodeRules, topic), topic).toBe(true)
    for (const topic of [`naeural/${other}/config`, 'naeural//payloads', 'naeural/a/b/payloads', 'naeural/+/payloads', 'naeural/#', 'other/ctrl', 'naeural/ctrl/extra']) expect(mayPublish(nodeRules, topic), topic).toBe(false)
  })

  it('holds a client to its own targeted topic under another root, and lets it send to any node', () => {
    for (const filter of ['fleet/eu/ctrl', 'fleet/eu/notif', 'fleet/eu/payloads', `fleet/eu/${client}/payloads`]) expect(maySubscribe(clientRules, filter), filter).toBe(true)
    for (const filter of [`fleet/eu/${other}/payloads`, 'fleet/eu/+/payloads', 'naeural/ctrl', `fleet/eu/${node}/config`]) expect(maySubscribe(clientRules, filter), filter).toBe(false)
    expect(mayPublish(clientRules, `fleet/eu/${node}/config`)).toBe(true)
    for (const topic of ['fleet/eu/ctrl', `fleet/eu/${client}/payloads`, `naeural/${node}/config`]) expect(mayPublish(clientRules, topic), topic).toBe(false)
  })

  it('refuses a malformed topic root as a usage error', () => {
    expect(() => aclRules({name: 'n', role: 'node', address: node}, 'naeural/+')).toThrow(expect.objectContaining({exitCode: 2, code: 'BROKER_TOPIC_ROOT'}))
  })
})
