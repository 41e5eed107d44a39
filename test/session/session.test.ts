import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {NotificationCode} from '../../src/protocol/codes.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {Session} from '../../src/session/index.js'
import {execPipeline, startTestNode, type TestNode} from '../server/helpers.js'

let t: TestNode
beforeAll(async () => {
  t = await startTestNode()
})
afterAll(async () => t?.dispose())

describe('session errors carry exit codes', () => {
  it('unreachable: nothing listening → exit 7', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as {port: number}).port
    await new Promise<void>((r) => server.close(() => r()))
    const error = await Session.connect({url: `ws://127.0.0.1:${port}`, nodeAddress: t.node.address, identity: t.client}).catch((e) => e)
    expect(error).toMatchObject({exitCode: 7, code: 'NODE_UNREACHABLE'})
  })

  it('a peer that accepts TCP but never answers → exit 7 after the connect timeout', async () => {
    const silent: Server = createServer(() => undefined)
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const port = (silent.address() as {port: number}).port
    const error = await Session.connect({url: `ws://127.0.0.1:${port}`, nodeAddress: t.node.address, identity: t.client, connectTimeoutMs: 300}).catch((e) => e)
    expect(error).toMatchObject({exitCode: 7})
    expect(error.message).toMatch(/Timed out|timeout/i)
    silent.close()
  })

  it('the wrong node at the URL → identity mismatch (exit 4, expected vs got), before anything is sent', async () => {
    const expected = generateIdentity().address
    const error = await Session.connect({url: t.node.url, nodeAddress: expected, identity: t.client}).catch((e) => e)
    expect(error).toMatchObject({exitCode: 4, code: 'IDENTITY_MISMATCH'})
    expect(error.message).toContain(`expected the node ${expected}, got ${t.node.address}`)
  })

  it('without an expected address, the session learns it from the signed hello', async () => {
    const session = await Session.connect({url: t.node.url, nodeAddress: undefined, identity: t.client})
    expect(session.address).toBe(t.node.address)
    await session.close()
  })

  it('a confirmation that never comes → exit 5; a failing one → exit 4', async () => {
    const session = await t.connect()
    const timeout = await session.send('UPDATE_CONFIG', execPipeline('slow'), {expect: [{code: NotificationCode.PIPELINE_ARCHIVE_OK, pipeline: 'slow'}], timeoutMs: 1500}).catch((e) => e)
    expect(timeout).toMatchObject({exitCode: 5, code: 'CONFIRMATION_TIMEOUT'})
    const failed = await session
      .send('UPDATE_CONFIG', {NAME: 'broken', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'b', CODE: 'return 1', PROCESS_DELAY: 'soon'}]}]}, {
        expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, instance: 'b'}],
        timeoutMs: 20_000,
      })
      .catch((e) => e)
    expect(failed).toMatchObject({exitCode: 4, code: 'COMMAND_FAILED'})
  })

  it('the connection lost while waiting → exit 7', async () => {
    const session = await t.connect()
    const pending = session.send('UPDATE_CONFIG', execPipeline('lost'), {expect: [{code: NotificationCode.PIPELINE_ARCHIVE_OK}], timeoutMs: 20_000}).catch((e) => e)
    await new Promise((r) => setTimeout(r, 300))
    session.dropConnection()
    expect(await pending).toMatchObject({exitCode: 7})
  })

  it('commands sent in parallel with the same payload all get their own answer (no false replay)', async () => {
    const session = await t.connect()
    const states = await Promise.all(Array.from({length: 20}, () => session.state()))
    expect(states.every((s) => s.ADDRESS === t.node.address)).toBe(true)
  })
})

describe('wss:// with a certificate the test makes', () => {
  let tls: TestNode
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'r1-tls-'))
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], {stdio: 'ignore'})
    tls = await startTestNode({tlsCertPath: join(dir, 'cert.pem'), tlsKeyPath: join(dir, 'key.pem')})
  })
  afterAll(async () => {
    await tls?.dispose()
    rmSync(dir, {recursive: true, force: true})
  })

  it('serves wss://; the session trusts the given CA, refuses an unknown certificate, and --insecure still checks signatures', async () => {
    expect(tls.node.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/)
    const trusted = await tls.connect({ca: readFileSync(join(dir, 'cert.pem'))})
    await trusted.send('UPDATE_CONFIG', execPipeline('secure'), {expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, instance: 'exec-1'}]})
    const untrusted = await Session.connect({url: tls.node.url, nodeAddress: tls.node.address, identity: tls.client}).catch((e) => e)
    expect(untrusted).toMatchObject({exitCode: 7})
    expect(untrusted.hint).toContain('--ca')
    const insecure = await tls.connect({insecure: true})
    expect((await insecure.state()).PIPELINES.map((p) => p.NAME)).toEqual(['secure'])
    const wrongNode = await Session.connect({url: tls.node.url, nodeAddress: generateIdentity().address, identity: tls.client, insecure: true}).catch((e) => e)
    expect(wrongNode).toMatchObject({code: 'IDENTITY_MISMATCH', exitCode: 4})
  })
})
