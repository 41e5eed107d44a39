// `r1 broker` end to end with the built CLI: users added with `r1 broker user add`, a broker started by
// `r1 broker start` (mqtt, ws; mqtts and wss with a certificate the test makes), real mqtt.js clients
// held to their role's topics; the same rules printed for Mosquitto and enforced by a real Mosquitto.
import {execFileSync} from 'node:child_process'
import {readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import type {MqttClient} from 'mqtt'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {startMosquitto} from '../../bench/servers.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {topics} from '../../src/protocol/topics.js'
import {r1, selfSignedCert, spawnFirstJsonLine, tempRoot} from '../deploy/nodes.js'
import {mqttClient, skipWithout} from './helpers.js'

const t = topics()
const [nodeA, nodeB, clientC, clientD] = [generateIdentity(), generateIdentity(), generateIdentity(), generateIdentity()].map((i) => i.address)
const PASSWORD = 'correct horse battery'
const users = [
  {name: 'edge-a', role: 'node', address: nodeA},
  {name: 'edge-b', role: 'node', address: nodeB},
  {name: 'laptop-c', role: 'client', address: clientC},
  {name: 'laptop-d', role: 'client', address: clientD},
]

interface Started {
  url: string
  wsUrl?: string
  auth: boolean
  users: number
  dataDir: string
}

/** Resolves with the SUBACK code of one subscription (0 or 1 granted, 128 refused). */
async function subscribeCode(client: MqttClient, topic: string): Promise<number> {
  try {
    return (await client.subscribeAsync(topic, {qos: 1}))[0].qos
  } catch (error) {
    // mqtt.js rejects a SUBACK that refuses the filter; the packet says how.
    const granted = (error as {packet?: {granted?: number[]}}).packet?.granted
    if (!granted) throw error
    return granted[0]
  }
}

/** The next message a client receives on `topic` within `ms`, or undefined. */
function nextMessage(client: MqttClient, topic: string, ms: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage)
      resolve(undefined)
    }, ms)
    const onMessage = (received: string, payload: Buffer): void => {
      if (received !== topic) return
      clearTimeout(timer)
      client.off('message', onMessage)
      resolve(payload.toString())
    }
    client.on('message', onMessage)
  })
}

describe('r1 broker user and r1 broker acl', () => {
  const root = tempRoot('r1-broker-cli-')
  const dataDir = join(root.dir, 'broker')
  const passwordFile = join(root.dir, 'password')
  afterAll(() => root.dispose())

  it('adds users (file 0600, only scrypt hashes), lists them and prints their rules', async () => {
    writeFileSync(passwordFile, `${PASSWORD}\n`)
    for (const user of users) {
      const added = await r1(['broker', 'user', 'add', user.name, '--role', user.role, '--address', user.address, '--password-file', passwordFile, '--data-dir', dataDir, '--json'])
      expect(added.exitCode, added.stderr).toBe(0)
      expect(added.json).toMatchObject({user: {name: user.name, role: user.role, address: user.address}, replaced: false})
    }
    const file = join(dataDir, 'users.json')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(statSync(dataDir).mode & 0o777).toBe(0o700)
    const text = readFileSync(file, 'utf8')
    expect(text).not.toContain(PASSWORD)
    expect(JSON.parse(text).users['edge-a'].password).toMatch(/^scrypt\$16384\$8\$1\$/)

    const listed = await r1(['broker', 'user', 'ls', '--data-dir', dataDir, '--json'])
    expect(listed.json.users.map((u: {name: string}) => u.name)).toEqual(['edge-a', 'edge-b', 'laptop-c', 'laptop-d'])
    const acl = await r1(['broker', 'acl', '--data-dir', dataDir, '--json'])
    expect(acl.json.users[0].rules).toEqual([
      {access: 'read', topic: t.config(nodeA)},
      {access: 'write', topic: t.ctrl},
      {access: 'write', topic: t.notif},
      {access: 'write', topic: t.payloads},
      {access: 'write', topic: 'naeural/+/payloads'},
    ])
    expect(acl.json.users[2].rules).toEqual([
      {access: 'read', topic: t.ctrl},
      {access: 'read', topic: t.notif},
      {access: 'read', topic: t.payloads},
      {access: 'read', topic: t.targeted(clientC)},
      {access: 'write', topic: 'naeural/+/config'},
    ])
  })

  it('refuses bad input with exit 2 and leaves the user file as it was', async () => {
    const file = join(dataDir, 'users.json')
    const before = readFileSync(file, 'utf8')
    const cases: Array<[string[], string]> = [
      [['bad name!', '--role', 'node', '--address', nodeA, '--password-file', passwordFile], 'BROKER_USER_NAME'],
      [['edge-x', '--role', 'node', '--address', '0xai_nope', '--password-file', passwordFile], 'BROKER_USER_ADDRESS'],
      [['edge-x', '--role', 'node', '--address', nodeA, '--password-file', join(root.dir, 'missing')], 'BROKER_PASSWORD_FILE'],
      [['edge-x', '--role', 'node', '--address', nodeA], 'SECRET_VALUE_EMPTY'], // stdin is empty, no terminal: no prompt
    ]
    writeFileSync(join(root.dir, 'short'), 'short\n')
    cases.push([['edge-x', '--role', 'node', '--address', nodeA, '--password-file', join(root.dir, 'short')], 'BROKER_PASSWORD_SHORT'])
    for (const [args, code] of cases) {
      const result = await r1(['broker', 'user', 'add', ...args, '--data-dir', dataDir, '--json'])
      expect(result.exitCode, `${args.join(' ')}: ${result.stdout}`).toBe(2)
      expect(result.json.error.code).toBe(code)
    }
    const badRole = await r1(['broker', 'user', 'add', 'edge-x', '--role', 'admin', '--address', nodeA, '--password-file', passwordFile, '--data-dir', dataDir])
    expect(badRole.exitCode).toBe(2)
    const unknown = await r1(['broker', 'user', 'rm', 'nobody', '--data-dir', dataDir, '--json'])
    expect(unknown.exitCode).toBe(1)
    expect(unknown.json.error.code).toBe('BROKER_USER_UNKNOWN')
    expect(readFileSync(file, 'utf8')).toBe(before)
  })

  it('refuses a corrupt user file with a clear error and does not overwrite it', async () => {
    const corruptDir = join(root.dir, 'corrupt')
    const file = join(corruptDir, 'users.json')
    execFileSync('mkdir', ['-p', corruptDir])
    writeFileSync(file, '{"version": 1, "users": {"x": {"role": "king"}}}')
    const result = await r1(['broker', 'user', 'add', 'edge-a', '--role', 'node', '--address', nodeA, '--password-file', passwordFile, '--data-dir', corruptDir, '--json'])
    expect(result.exitCode).toBe(1)
    expect(result.json.error).toMatchObject({code: 'BROKER_USERS_INVALID'})
    expect(readFileSync(file, 'utf8')).toBe('{"version": 1, "users": {"x": {"role": "king"}}}')
    const started = await r1(['broker', 'start', '--port', '0', '--data-dir', corruptDir, '--json'])
    expect(started.exitCode).toBe(1)
    expect(started.json.error.code).toBe('BROKER_USERS_INVALID')
  })

  it('refuses to serve an open broker beyond loopback', async () => {
    const result = await r1(['broker', 'start', '--host', '0.0.0.0', '--port', '0', '--data-dir', join(root.dir, 'empty'), '--json'])
    expect(result.exitCode).toBe(2)
    expect(result.json.error.code).toBe('BROKER_OPEN')
  })

  it('refuses a malformed topic root', async () => {
    const result = await r1(['broker', 'acl', '--root', 'naeural/#', '--data-dir', dataDir, '--json'])
    expect(result.exitCode).toBe(2)
    expect(result.json.error.code).toBe('BROKER_TOPIC_ROOT')
  })

  describe('a broker started by r1 broker start', () => {
    let broker: Awaited<ReturnType<typeof spawnFirstJsonLine<Started>>>
    const login = (name: string, url = broker.line.url, password = PASSWORD) => mqttClient(url, {username: name, password, clientId: `${name}-${Math.random().toString(36).slice(2)}`})
    const clients: MqttClient[] = []
    const connected = async (name: string, url?: string): Promise<MqttClient> => {
      const client = await login(name, url)
      clients.push(client)
      return client
    }

    beforeAll(async () => {
      broker = await spawnFirstJsonLine<Started>(['broker', 'start', '--json', '--port', '0', '--ws-port', '0', '--data-dir', dataDir])
    })
    afterAll(async () => {
      await Promise.all(clients.map((c) => c.endAsync(true)))
      await broker?.stop()
    })

    it('prints its loopback URLs and that logins are checked', () => {
      expect(broker.line).toMatchObject({url: expect.stringMatching(/^mqtt:\/\/127\.0\.0\.1:\d+$/), wsUrl: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+$/), auth: true, users: 4, dataDir})
    })

    it('refuses a wrong password, an unknown user and an anonymous client', async () => {
      await expect(login('edge-a', broker.line.url, 'wrong password')).rejects.toThrow(/Bad username or password/i)
      await expect(login('nobody')).rejects.toThrow(/Bad username or password/i)
      await expect(mqttClient(broker.line.url)).rejects.toThrow(/Bad username or password/i)
    })

    it("lets a node read only its own config topic: another node's, a wildcard and the shared topics are refused", async () => {
      const a = await connected('edge-a')
      expect(await subscribeCode(a, t.config(nodeA))).toBe(1)
      for (const topic of [t.config(nodeB), 'naeural/+/config', 'naeural/#', '#', t.ctrl, t.targeted(clientC)]) expect(await subscribeCode(a, topic), topic).toBe(128)
    })

    it('carries a client command to the addressed node only, and its reply to the targeted client only', async () => {
      const [a, b, c, d] = [await connected('edge-a'), await connected('edge-b', broker.line.wsUrl), await connected('laptop-c'), await connected('laptop-d')]
      expect(await subscribeCode(a, t.config(nodeA))).toBe(1)
      expect(await subscribeCode(b, t.config(nodeB))).toBe(1)
      expect(await subscribeCode(c, t.targeted(clientC))).toBe(1)
      expect(await subscribeCode(d, t.targeted(clientD))).toBe(1)
      expect(await subscribeCode(d, t.targeted(clientC))).toBe(128) // a client cannot read another's replies
      expect(await subscribeCode(c, t.ctrl)).toBe(1)

      const [toA, toB] = [nextMessage(a, t.config(nodeA), 2000), nextMessage(b, t.config(nodeB), 500)]
      await c.publishAsync(t.config(nodeA), 'command for A', {qos: 1})
      expect(await toA).toBe('command for A')
      expect(await toB).toBeUndefined()

      const [toC, toD] = [nextMessage(c, t.targeted(clientC), 2000), nextMessage(d, t.targeted(clientC), 500)]
      await a.publishAsync(t.targeted(clientC), 'reply for C', {qos: 1})
      expect(await toC).toBe('reply for C')
      expect(await toD).toBeUndefined()

      const heartbeat = nextMessage(c, t.ctrl, 2000)
      await b.publishAsync(t.ctrl, 'heartbeat of B', {qos: 1})
      expect(await heartbeat).toBe('heartbeat of B')
    })

    it("disconnects a node that publishes to another node's config topic, and the message goes nowhere", async () => {
      const b = await connected('edge-b')
      expect(await subscribeCode(b, t.config(nodeB))).toBe(1)
      const rogue = await login('edge-a')
      const closed = new Promise<void>((resolve) => rogue.once('close', () => resolve()))
      const received = nextMessage(b, t.config(nodeB), 1000)
      rogue.publish(t.config(nodeB), 'forged command', {qos: 1})
      await closed
      expect(await received).toBeUndefined()
      rogue.end(true)
    })

    it('applies a user removed while it runs at the next login', async () => {
      const removed = await r1(['broker', 'user', 'rm', 'laptop-d', '--data-dir', dataDir, '--json'])
      expect(removed.json).toMatchObject({name: 'laptop-d', removed: true})
      await expect(login('laptop-d')).rejects.toThrow(/Bad username or password/i)
    })

    it('stops on SIGTERM with exit 0', async () => {
      await broker.stop()
      expect(broker.child.exitCode).toBe(0)
      await expect(login('edge-a')).rejects.toThrow(/ECONNREFUSED/)
    })
  })

  describe('mqtts:// and wss:// with a certificate the test makes', () => {
    let broker: Awaited<ReturnType<typeof spawnFirstJsonLine<Started>>>
    let ca: Buffer

    beforeAll(async () => {
      const cert = await selfSignedCert(root.dir)
      ca = readFileSync(cert.cert)
      broker = await spawnFirstJsonLine<Started>(['broker', 'start', '--json', '--port', '0', '--ws-port', '0', '--tls-cert', cert.cert, '--tls-key', cert.key, '--data-dir', dataDir])
    })
    afterAll(async () => broker?.stop())

    it('serves both, checks logins over them, and a client that does not trust the certificate is refused', async () => {
      expect(broker.line.url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/)
      expect(broker.line.wsUrl).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/)
      for (const url of [broker.line.url, broker.line.wsUrl!]) {
        const [a, c] = [await mqttClient(url, {ca, username: 'edge-a', password: PASSWORD}), await mqttClient(url, {ca, username: 'laptop-c', password: PASSWORD})]
        expect(await subscribeCode(a, t.config(nodeA))).toBe(1)
        const toA = nextMessage(a, t.config(nodeA), 2000)
        await c.publishAsync(t.config(nodeA), `over ${url.split(':')[0]}`, {qos: 1})
        expect(await toA).toBe(`over ${url.split(':')[0]}`)
        await Promise.all([a.endAsync(), c.endAsync()])
        await expect(mqttClient(url, {ca, username: 'edge-a', password: 'wrong password'})).rejects.toThrow(/Bad username or password/i)
        await expect(mqttClient(url, {username: 'edge-a', password: PASSWORD})).rejects.toThrow(/self[- ]signed|certificate/i)
      }
    })
  })

  describe.skipIf(skipWithout('mosquitto'))('the ACL file r1 broker acl --mosquitto prints, in a real Mosquitto', () => {
    it('holds nodes and clients to the same topics', async () => {
      const aclFile = join(root.dir, 'r1.acl')
      const printed = await r1(['broker', 'acl', '--mosquitto', '--data-dir', dataDir])
      expect(printed.exitCode).toBe(0)
      writeFileSync(aclFile, printed.stdout)
      const passwd = join(root.dir, 'passwd')
      writeFileSync(passwd, '')
      for (const user of users) execFileSync('mosquitto_passwd', ['-b', passwd, user.name, PASSWORD])
      const mosquitto = await startMosquitto({passwordFile: passwd, aclFile})
      try {
        const connect = (name: string, password = PASSWORD) => mqttClient(mosquitto.url, {username: name, password})
        await expect(connect('edge-a', 'wrong password')).rejects.toThrow(/Not authorized|Bad username or password/i)
        const [a, b, c] = [await connect('edge-a'), await connect('edge-b'), await connect('laptop-c')]
        // Mosquitto grants any SUBSCRIBE and checks read access at delivery: what a user may not read never arrives.
        for (const [client, topic] of [[a, t.config(nodeA)], [b, t.config(nodeB)], [a, t.config(nodeB)], [c, t.targeted(clientC)], [c, t.targeted(clientD)]] as const) await client.subscribeAsync(topic, {qos: 1})
        const [toA, toB, aReadsB] = [nextMessage(a, t.config(nodeA), 2000), nextMessage(b, t.config(nodeB), 2000), nextMessage(a, t.config(nodeB), 1000)]
        await c.publishAsync(t.config(nodeA), 'command for A', {qos: 1})
        await c.publishAsync(t.config(nodeB), 'command for B', {qos: 1})
        expect(await toA).toBe('command for A')
        expect(await toB).toBe('command for B')
        expect(await aReadsB).toBeUndefined()
        const [toC, cReadsD] = [nextMessage(c, t.targeted(clientC), 2000), nextMessage(c, t.targeted(clientD), 1000)]
        await a.publishAsync(t.targeted(clientC), 'reply for C', {qos: 1})
        await a.publishAsync(t.targeted(clientD), 'reply for D', {qos: 1})
        expect(await toC).toBe('reply for C')
        expect(await cReadsD).toBeUndefined()
        // Mosquitto drops a denied publish (and may drop the connection): B never sees A's forgery.
        const forger = await connect('edge-a')
        const forged = nextMessage(b, t.config(nodeB), 1000)
        forger.publish(t.config(nodeB), 'forged', {qos: 1})
        expect(await forged).toBeUndefined()
        forger.end(true)
        await Promise.all([a, b, c].map((client) => client.endAsync()))
      } finally {
        await mosquitto.stop()
      }
    })
  })
})
