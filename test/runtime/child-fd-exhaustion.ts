// Child of fd-exhaustion.test.ts: a node whose process runs out of file descriptors (EMFILE) while its
// heartbeat timer fires, then gets them back. Prints `exhausted <n>` and `alive <heartbeats>` lines.
import {openSync, closeSync} from 'node:fs'
import {startLocalNode} from '../../src/runtime/index.js'

const node = await startLocalNode({heartbeatIntervalMs: 50, log: () => undefined})
let heartbeats = 0
node.onEvent((event) => {
  if (event.EE_EVENT_TYPE === 'HEARTBEAT') heartbeats++
})
const held: number[] = []
try {
  for (;;) held.push(openSync('/dev/null', 'r'))
} catch (error) {
  process.stdout.write(`exhausted ${(error as NodeJS.ErrnoException).code}\n`)
}
await new Promise((resolve) => setTimeout(resolve, 500)) // ten heartbeat periods with no descriptor free
for (const fd of held) closeSync(fd)
const before = heartbeats
await new Promise((resolve) => setTimeout(resolve, 300))
process.stdout.write(`alive ${heartbeats > before ? 'beating' : 'silent'}\n`)
await node.stop()
