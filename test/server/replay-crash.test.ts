import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {freePort} from '../../bench/servers.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {formatTime, type Rejection, type UnsignedCommand} from '../../src/protocol/messages.js'
import {encodeCommand} from '../../src/protocol/wire.js'
import {type NodeProc, spawnNode} from '../logs/helpers.js'
import {RawClient, rejectionFor, replyFor} from './raw-client.js'

// Spawns the built CLI (`npm run build` first): `r1 node start` killed with -9 right after it answered.
const nodes: NodeProc[] = []
let dataDir: string
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill9()))
  if (dataDir) await rm(dataDir, {recursive: true, force: true})
})

describe('replay after a crash', () => {
  it('a command answered just before kill -9 is REPLAY after the restart, and the state is the later one', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'r1-replay-crash-'))
    const client = generateIdentity()
    const port = await freePort()
    const start = async () => {
      const node = await spawnNode({dataDir, port, alias: 'crash', allow: [client.address]})
      nodes.push(node)
      return node
    }
    const pipeline = (code: string) => ({NAME: 'crashy', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'exec-1', PROCESS_DELAY: 30, CODE: code}]}]})
    const command = (address: string, code: string): UnsignedCommand => ({ACTION: 'UPDATE_CONFIG', PAYLOAD: pipeline(code), EE_DEST: address, INITIATOR_ID: 'crash', SESSION_ID: 's', TIME: formatTime()})
    let node = await start()
    let raw = await RawClient.connect(node.url, node.address)
    const first = encodeCommand(command(node.address, 'return {v: 1}'), client)
    const second = encodeCommand(command(node.address, 'return {v: 2}'), client)
    for (const {text, hash} of [first, second]) {
      raw.send(text)
      await raw.waitFor(replyFor(hash))
    }
    raw.close()
    await node.kill9()

    node = await start()
    raw = await RawClient.connect(node.url, node.address)
    raw.send(first.text)
    expect(((await raw.waitFor(rejectionFor(first.hash))) as Rejection).REASON).toBe('REPLAY')
    const state = encodeCommand({ACTION: 'R1_STATE', PAYLOAD: {NAME: 'crashy'}, EE_DEST: node.address, INITIATOR_ID: 'crash', SESSION_ID: 's', TIME: formatTime()}, client)
    raw.send(state.text)
    const reply = (await raw.waitFor(replyFor(state.hash))) as {RESULT: {PIPELINES: Array<{PLUGINS: Array<{INSTANCES: Array<{CODE: string}>}>}>}}
    expect(reply.RESULT.PIPELINES[0]!.PLUGINS[0]!.INSTANCES[0]!.CODE).toBe('return {v: 2}')
    raw.close()
    await node.stop()
  })
})
