import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {generateIdentity, type Identity} from '../../src/protocol/identity.js'
import type {PipelineConfig} from '../../src/protocol/pipeline.js'
import {startNodeServer, type NodeServerHandle, type StartNodeServerOptions} from '../../src/runtime/serve.js'
import {allowAddress} from '../../src/runtime/server-allowlist.js'
import {Session, type SessionOptions} from '../../src/session/index.js'

/** A real node on 127.0.0.1:0 in a temp data dir, plus an allow-listed client identity. */
export interface TestNode {
  node: NodeServerHandle
  dataDir: string
  client: Identity
  connect(options?: Partial<SessionOptions>): Promise<Session>
  dispose(): Promise<void>
}

export async function startTestNode(options: Partial<StartNodeServerOptions> = {}): Promise<TestNode> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'r1-server-test-')))
  const client = generateIdentity()
  await allowAddress(dataDir, client.address, 'test-client')
  const node = await startNodeServer({dataDir, port: 0, heartbeatIntervalMs: 0, log: () => undefined, ...options})
  const sessions: Session[] = []
  return {
    node,
    dataDir,
    client,
    async connect(extra = {}) {
      const session = await Session.connect({url: node.url, nodeAddress: node.address, identity: client, ...extra})
      sessions.push(session)
      return session
    },
    async dispose() {
      await Promise.all(sessions.map((s) => s.close()))
      await node.stop()
      await rm(dataDir, {recursive: true, force: true})
    },
  }
}

/** A pipeline with one CUSTOM_EXEC_01 instance that emits `{n}` every `delay` seconds. */
export function execPipeline(name: string, instanceId = 'exec-1', delay = 0.2): PipelineConfig {
  return {
    NAME: name,
    TYPE: 'Void',
    PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: instanceId, PROCESS_DELAY: delay, CODE: 'return {n: 1}'}]}],
  }
}
