// Child process for the node-state tests (not a test file): a node core on a data dir, driven by JSON lines.
//   stdin  {"id": 1, "action": "UPDATE_CONFIG", "payload": {...}} | {"id": 2, "query": "state"} | {"id": 3, "query": "stop"}
//   stdout {"id": 1, "ok": true, "result": ...} | {"id": 1, "ok": false, "error": {"message", "code"}}
import {createInterface} from 'node:readline'
import {R1Error} from '../../src/errors.js'
import type {Action, PayloadOf} from '../../src/protocol/messages.js'
import {startLocalNode} from '../../src/runtime/index.js'

const [dataDir] = process.argv.slice(2)
const node = await startLocalNode({dataDir: dataDir!, heartbeatIntervalMs: 0, supervisor: {restartBaseMs: 50, restartCapMs: 400, graceMs: 1000}})
const print = (value: unknown) => process.stdout.write(JSON.stringify(value) + '\n')
let counter = 0
print({ready: true})
for await (const line of createInterface({input: process.stdin})) {
  const request = JSON.parse(line) as {id: number; action?: string; payload?: unknown; query?: string}
  try {
    if (request.query === 'state') {
      print({id: request.id, ok: true, result: node.state().map((p) => ({name: p.name, version: p.version, archived: p.archived, config: p.config, pids: p.instances.map((i) => i.pid ?? null)}))})
    } else if (request.query === 'stop') {
      await node.stop()
      print({id: request.id, ok: true})
      break
    } else {
      await node.execute(request.action as Action, request.payload as PayloadOf<Action>, {hash: `child-${++counter}`, sender: '0xai_test'})
      print({id: request.id, ok: true})
    }
  } catch (error) {
    print({id: request.id, ok: false, error: {message: (error as Error).message, code: error instanceof R1Error ? error.code : undefined}})
  }
}
process.exit(0)
