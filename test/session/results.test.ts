// The session checks each query's RESULT against the protocol's result schema: a node that answers
// nonsense fails the command (exit 1) instead of handing it on. The node here is a real, signing
// r1.v1 ws server on 127.0.0.1:0 whose answers the test chooses.
import {afterEach, describe, expect, it} from 'vitest'
import {WebSocketServer} from 'ws'
import {generateIdentity} from '../../src/protocol/identity.js'
import {type Action, SUBPROTOCOL} from '../../src/protocol/messages.js'
import {decodeCommand, encodeSigned} from '../../src/protocol/wire.js'
import {Session} from '../../src/session/index.js'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

/** A node that answers every command with `answers[ACTION]` as RESULT (null when absent). */
async function answeringNode(answers: Partial<Record<Action, unknown>>): Promise<Session> {
  const identity = generateIdentity()
  const wss = new WebSocketServer({host: '127.0.0.1', port: 0, handleProtocols: () => SUBPROTOCOL, perMessageDeflate: false})
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
  cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())))
  const path = ['fake', null, null, null]
  wss.on('connection', (ws) => {
    ws.send(encodeSigned({EE_EVENT_TYPE: 'R1_HELLO', EE_PAYLOAD_PATH: path, EE_TIMESTAMP: new Date().toISOString(), EE_ADDR: identity.address, EE_ALIAS: 'fake', LAST_SEQ: 0, VERSION: 'test', PROTOCOL: SUBPROTOCOL}, identity).text)
    ws.on('message', (data) => {
      const command = decodeCommand(data.toString())
      if (!command.ok || 'encrypted' in command) return
      const result = answers[command.action] ?? null
      ws.send(encodeSigned({EE_EVENT_TYPE: 'R1_REPLY', EE_PAYLOAD_PATH: path, EE_TIMESTAMP: new Date().toISOString(), COMMAND_HASH: command.hash, ACTION: command.action, RESULT: result}, identity).text)
    })
  })
  const session = await Session.connect({url: `ws://127.0.0.1:${(wss.address() as {port: number}).port}`, nodeAddress: identity.address, identity: generateIdentity()})
  cleanups.unshift(() => session.close())
  return session
}

describe('query results are checked against their schema', () => {
  it('a malformed R1_STATE fails with BAD_NODE_RESULT (exit 1) naming the field; a well-formed answer comes back typed', async () => {
    const state = {ADDRESS: 'a', ALIAS: 'fake', VERSION: null, UPTIME: 1, LAST_SEQ: 0, PIPELINES: [{NAME: 'p', TYPE: 'Void'}], ARCHIVED: [], INSTANCES: [], VERSIONS: {}, WARNINGS: []}
    const session = await answeringNode({R1_STATE: state, R1_BUNDLE_HAS: {HAVE: [], MISSING: ['b'.repeat(64)]}})
    await expect(session.state()).rejects.toMatchObject({code: 'BAD_NODE_RESULT', exitCode: 1, message: expect.stringMatching(/fake answered R1_STATE with a malformed result \(RESULT\.PIPELINES\.0\.PLUGINS: /)})
    expect(await session.missingBundles(['b'.repeat(64)])).toEqual(['b'.repeat(64)])
    // the session is still usable after a bad answer
    expect((await session.send('DELETE_CONFIG', 'p')).result).toBeNull()
  })
})
