// Secrets on a real node: encrypted commands through admission, R1_SECRETS stored sealed, references
// resolved for the instance process only, and the value kept out of everything the node writes or says.
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {NotificationCode} from '../../src/protocol/codes.js'
import type {NodeEvent} from '../../src/protocol/events.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {formatTime, type Rejection, type UnsignedCommand} from '../../src/protocol/messages.js'
import {encryptCommandPayload} from '../../src/protocol/encryption.js'
import {encodeCommand, encodeEncryptedCommand, encodeSigned} from '../../src/protocol/wire.js'
import {sealSecret} from '../../src/secrets/store.js'
import type {Session} from '../../src/session/index.js'
import {RawClient, rejectionFor, replyFor} from './raw-client.js'
import {startNodeServer} from '../../src/runtime/serve.js'
import {startTestNode, type TestNode} from './helpers.js'
import type {PipelineConfig} from '../../src/protocol/pipeline.js'

const VALUE = 'postgres://app:hunter2-Zq9@db.internal/prod'

let t: TestNode
let raw: RawClient
let session: Session
const events: NodeEvent[] = []

beforeAll(async () => {
  t = await startTestNode({rateLimit: {burst: 1000, perSecond: 1000}, core: {supervisor: {restartBaseMs: 100, crashLoopThreshold: 100}}})
  t.node.core.onEvent((event) => events.push(structuredClone(event)))
  raw = await RawClient.connect(t.node.url, t.node.address)
  session = await t.connect()
})
afterAll(async () => {
  raw?.close()
  await t?.dispose()
})

function command(action: UnsignedCommand['ACTION'], payload: unknown, extra: Partial<UnsignedCommand> = {}): UnsignedCommand {
  return {ACTION: action, PAYLOAD: payload, EE_DEST: t.node.address, INITIATOR_ID: 'secrets-test', SESSION_ID: 's', TIME: formatTime(), ...extra}
}

function sealed(names: Record<string, string>): Record<string, {SENDER: string; DATA: string}> {
  return Object.fromEntries(Object.entries(names).map(([name, value]) => {
    const s = sealSecret(value, t.node.address)
    return [name, {SENDER: s.sender, DATA: s.data}]
  }))
}

async function expectRejected(text: string, hash: string, reason: Rejection['REASON']): Promise<Rejection> {
  raw.send(text)
  const rejection = (await raw.waitFor(rejectionFor(hash))) as Rejection
  expect(rejection.REASON).toBe(reason)
  return rejection
}

async function stillServes(): Promise<void> {
  const {text, hash} = encodeCommand(command('R1_STATE', null), t.client)
  raw.send(text)
  await raw.waitFor(replyFor(hash))
}

/** Every file under the data dir, with its bytes. */
function dataDirFiles(dir = t.dataDir): Array<{path: string; text: string}> {
  const out: Array<{path: string; text: string}> = []
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) out.push(...dataDirFiles(path))
    else out.push({path, text: readFileSync(path).toString('latin1')})
  }
  return out
}

function appPipeline(name: string, secret = 'DB_URL'): PipelineConfig {
  return {
    NAME: name,
    TYPE: 'Void',
    PLUGINS: [
      {
        SIGNATURE: 'PROCESS_APP_RUNNER',
        INSTANCES: [
          {
            INSTANCE_ID: 'app-1',
            PROCESS_DELAY: 0.1,
            RESTART_POLICY: 'no',
            ENV: {DB_URL: {secret}},
            COMMAND: 'echo "url=$DB_URL"; echo "cannot reach $DB_URL" >&2; sleep 0.5; exit 3',
          },
        ],
      },
    ],
  }
}

async function until<T>(probe: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = probe()
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('encrypted commands at the node', () => {
  it('an encrypted query from an allow-listed key is opened and answered', async () => {
    const {reply} = await session.send('R1_STATE', null, {encrypted: true})
    expect(reply.RESULT).toMatchObject({ADDRESS: t.node.address})
  })

  it('R1_SECRETS in the clear is refused (ENCRYPTION_REQUIRED) and nothing is stored', async () => {
    const {text, hash} = encodeCommand(command('R1_SECRETS', {NAME: 'clear', SECRETS: sealed({DB_URL: VALUE})}), t.client)
    const rejection = await expectRejected(text, hash, 'ENCRYPTION_REQUIRED')
    expect(rejection.NOTIFICATION).toContain('encrypted')
    expect(t.node.core.secrets.has('clear')).toBe(false)
    await stillServes()
  })

  it('a tampered EE_ENCRYPTED_DATA (validly signed) is refused as BAD_ENCRYPTION; state unchanged', async () => {
    const before = JSON.stringify(t.node.core.state())
    const {text} = encodeEncryptedCommand(command('R1_SECRETS', {NAME: 'tampered', SECRETS: sealed({DB_URL: VALUE})}), t.client)
    const message = JSON.parse(text) as Record<string, unknown>
    const data = message.EE_ENCRYPTED_DATA as string
    const flipped = data.slice(0, 40) + (data[40] === 'A' ? 'B' : 'A') + data.slice(41)
    const {EE_HASH: _h, EE_SIGN: _s, EE_SENDER: _e, ...rest} = message
    const resigned = encodeSigned({...rest, EE_ENCRYPTED_DATA: flipped}, t.client)
    const rejection = await expectRejected(resigned.text, resigned.hash, 'BAD_ENCRYPTION')
    expect(rejection.NOTIFICATION).toMatch(/EE_ENCRYPTED_DATA/)
    // encrypted to another node's key, sent to this one
    const other = encodeEncryptedCommand(command('R1_STATE', null, {EE_DEST: generateIdentity().address}), t.client)
    const retargeted = JSON.parse(other.text) as Record<string, unknown>
    const {EE_HASH: _h2, EE_SIGN: _s2, EE_SENDER: _e2, ...body} = retargeted
    const wrongKey = encodeSigned({...body, EE_DEST: t.node.address}, t.client)
    await expectRejected(wrongKey.text, wrongKey.hash, 'BAD_ENCRYPTION')
    expect(t.node.core.secrets.has('tampered')).toBe(false)
    expect(JSON.stringify(t.node.core.state())).toBe(before)
    await stillServes()
  })

  it("a stranger's encrypted command is NOT_ALLOWED (never opened)", async () => {
    const stranger = generateIdentity()
    const {text, hash} = encodeEncryptedCommand(command('R1_SECRETS', {NAME: 'strange', SECRETS: sealed({DB_URL: VALUE})}), stranger)
    await expectRejected(text, hash, 'NOT_ALLOWED')
    expect(t.node.core.secrets.has('strange')).toBe(false)
    await stillServes()
  })

  it('an encrypted R1_SECRETS with a bad secret name or pipeline name is refused before anything is stored', async () => {
    // encrypted by hand: the client's own encoder refuses such payloads
    const encrypted = (c: UnsignedCommand) => {
      const {ACTION, PAYLOAD, ...envelope} = c
      return encodeSigned({...envelope, ...encryptCommandPayload({ACTION, PAYLOAD}, t.node.address, t.client)}, t.client)
    }
    const badName = encrypted(command('R1_SECRETS', {NAME: 'p', SECRETS: {'db-url': {SENDER: t.client.address, DATA: 'AA=='}}}))
    expect((await expectRejected(badName.text, badName.hash, 'INVALID_PAYLOAD')).NOTIFICATION).toMatch(/SECRETS\.db-url/)
    const bad = encrypted(command('UPDATE_CONFIG', {NAME: 'x'}))
    await expectRejected(bad.text, bad.hash, 'INVALID_PAYLOAD')
    const longName = encrypted(command('R1_SECRETS', {NAME: 'p'.repeat(250), SECRETS: {}}))
    await expectRejected(longName.text, longName.hash, 'INVALID_PAYLOAD')
    const badChars = encrypted(command('R1_SECRETS', {NAME: '../../etc', SECRETS: {}}))
    const refused = await expectRejected(badChars.text, badChars.hash, 'EXECUTION_FAILED')
    expect(refused.NOTIFICATION).toMatch(/NAME/)
    expect(t.node.core.secrets.has('../../etc')).toBe(false)
    await stillServes()
  })
})

describe('R1_SECRETS and secret references on a real node', () => {
  it('stores sealed values, resolves them for the process only, redacts its output, and writes the value nowhere', async () => {
    await session.send('R1_SECRETS', {NAME: 'app', SECRETS: sealed({DB_URL: VALUE})}, {encrypted: true})
    const file = t.node.core.secrets.fileOf('app')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readFileSync(file, 'utf8')).not.toContain(VALUE)

    await session.send('UPDATE_CONFIG', appPipeline('app'), {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'app'}]})
    // the app saw the value (its output names the redaction) and failed with it on stderr
    await until(() => events.find((e) => e.EE_EVENT_TYPE === 'LOG' && e.EE_PAYLOAD_PATH[1] === 'app' && (e as {MESSAGE?: unknown}).MESSAGE === 'url=[redacted:DB_URL]'), 'the app output')
    await until(() => (t.node.core.instance('app', 'PROCESS_APP_RUNNER', 'app-1')?.status === 'error' ? true : undefined), 'the app to fail')
    const state = t.node.core.state().find((p) => p.name === 'app')!
    expect(state.instances[0].lastError).toContain('[redacted:DB_URL]')
    expect(state.config.PLUGINS[0].INSTANCES[0].ENV).toEqual({DB_URL: {secret: 'DB_URL'}})

    const {reply} = await session.send('R1_STATE', {NAME: 'app'})
    const heartbeat = await session.heartbeat()
    for (const text of [JSON.stringify(reply.RESULT), JSON.stringify(heartbeat), JSON.stringify(events)]) {
      expect(text).not.toContain(VALUE)
      expect(text).not.toContain('hunter2')
    }
    expect(JSON.stringify(events)).toContain('[redacted:DB_URL]')
    await t.node.journal.flushQuietly()
    for (const {path, text} of dataDirFiles()) expect(text.includes('hunter2'), path).toBe(false)
  })

  it('a reference to a secret the node lacks: instance in error, a notification naming it (no value)', async () => {
    events.length = 0
    await session.send('UPDATE_CONFIG', appPipeline('lacking', 'API_TOKEN'))
    const failed = await until(() => events.find((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_FAILED && e.EE_PAYLOAD_PATH[1] === 'lacking'), 'the failure notice')
    expect((failed as unknown as {NOTIFICATION: string}).NOTIFICATION).toMatch(/API_TOKEN.*r1 secrets set API_TOKEN/)
    expect(t.node.core.instance('lacking', 'PROCESS_APP_RUNNER', 'app-1')?.status).toBe('error')
    // the secret arrives, the same config is deployed again: the instance starts with it
    await session.send('R1_SECRETS', {NAME: 'lacking', SECRETS: sealed({API_TOKEN: 'tok-7f3a9b'})}, {encrypted: true})
    await session.send('UPDATE_CONFIG', appPipeline('lacking', 'API_TOKEN'), {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'lacking'}]})
    await until(() => events.find((e) => e.EE_EVENT_TYPE === 'LOG' && e.EE_PAYLOAD_PATH[1] === 'lacking' && (e as {MESSAGE?: unknown}).MESSAGE === 'url=[redacted:API_TOKEN]'), 'the app output')
  })

  it('a new value for a running instance reconfigures it with the value (same config, no UPDATE_CONFIG)', async () => {
    events.length = 0
    const {hash} = await session.send('R1_SECRETS', {NAME: 'lacking', SECRETS: sealed({API_TOKEN: 'tok-NEW-5d21c0'})}, {encrypted: true})
    await until(() => events.find((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK && e.COMMAND_HASH === hash), 'PLUGIN_CONFIG_OK of the new secrets')
    expect(JSON.stringify(events)).not.toContain('tok-NEW-5d21c0')
    // sent again as it is: nothing to reconfigure
    // (a reconfiguration is decided before the node replies, and stamps lastConfigTime)
    const instance = t.node.core.instance('lacking', 'PROCESS_APP_RUNNER', 'app-1')!
    const configuredAt = instance.counters.lastConfigTime
    await new Promise((r) => setTimeout(r, 5)) // a later stamp would differ
    await session.send('R1_SECRETS', {NAME: 'lacking', SECRETS: {...t.node.core.secrets.of('lacking')}}, {encrypted: true})
    expect(instance.counters.lastConfigTime).toBe(configuredAt)
  })

  it('a running instance reconfigured to a secret the node lacks is stopped and in error, naming it', async () => {
    const running = (secret: string) => {
      const config = appPipeline('steady', secret)
      config.PLUGINS[0]!.INSTANCES[0]!.COMMAND = 'echo "url=$DB_URL"; sleep 60'
      return config
    }
    await session.send('R1_SECRETS', {NAME: 'steady', SECRETS: sealed({DB_URL: 'steady-value-1'})}, {encrypted: true})
    await session.send('UPDATE_CONFIG', running('DB_URL'), {expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, pipeline: 'steady', instance: 'app-1'}]})
    const instance = t.node.core.instance('steady', 'PROCESS_APP_RUNNER', 'app-1')!
    expect(instance.status).toBe('running')
    events.length = 0
    await session.send('UPDATE_CONFIG', running('NOPE_TOKEN'))
    await until(() => (instance.status === 'error' ? true : undefined), 'the instance in error')
    expect(instance.pid).toBeUndefined()
    expect(instance.counters.lastError).toContain('NOPE_TOKEN')
    const notice = events.find((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_FAILED)
    expect((notice as unknown as {INFO: unknown}).INFO).toEqual({MISSING_SECRETS: ['NOPE_TOKEN']})
  })

  it('DELETE_CONFIG of a pipeline that only has secrets removes them', async () => {
    await session.send('R1_SECRETS', {NAME: 'orphan', SECRETS: sealed({X_KEY: 'orphan-value'})}, {encrypted: true})
    const file = t.node.core.secrets.fileOf('orphan')
    expect(statSync(file).isFile()).toBe(true)
    await session.send('DELETE_CONFIG', 'orphan', {expect: [{code: NotificationCode.PIPELINE_DELETE_OK, pipeline: 'orphan'}]})
    expect(() => statSync(file)).toThrow()
  })

  it('DELETE_CONFIG removes the pipeline secrets from the data dir', async () => {
    const file = t.node.core.secrets.fileOf('app')
    expect(statSync(file).isFile()).toBe(true)
    await session.send('DELETE_CONFIG', 'app', {expect: [{code: NotificationCode.PIPELINE_DELETE_OK, pipeline: 'app'}]})
    expect(() => statSync(file)).toThrow()
    expect(t.node.core.secrets.has('app')).toBe(false)
  })

  it('after a restart the node reads secrets/ and starts the instance with its value again', async () => {
    await session.close()
    await t.node.stop()
    const again = await startNodeServer({dataDir: t.dataDir, port: 0, heartbeatIntervalMs: 0, log: () => undefined})
    try {
      const seen: NodeEvent[] = []
      again.core.onEvent((event) => seen.push(structuredClone(event)))
      await until(() => seen.find((e) => e.EE_EVENT_TYPE === 'LOG' && e.EE_PAYLOAD_PATH[1] === 'lacking' && (e as {MESSAGE?: unknown}).MESSAGE === 'url=[redacted:API_TOKEN]'), 'the restored app output')
      expect(JSON.stringify(seen)).not.toContain('tok-NEW-5d21c0')
    } finally {
      await again.stop()
    }
  })
})
