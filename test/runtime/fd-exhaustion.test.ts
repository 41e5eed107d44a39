// A node process out of file descriptors (EMFILE, as a 10,000-node fleet in one process found): its
// heartbeat timer skips what it cannot read, and the node goes on beating once descriptors are back.
import {spawn} from 'node:child_process'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {describe, expect, it} from 'vitest'

describe('a node out of file descriptors', () => {
  it('survives heartbeats while every descriptor is taken, and beats again after', async () => {
    // a low descriptor limit for the child alone, so exhausting it is quick
    const child = spawn('bash', ['-c', 'ulimit -n 256; exec "$0" --import tsx "$@"', process.execPath, join(import.meta.dirname, 'child-fd-exhaustion.ts')], {stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    child.stderr!.on('data', (chunk) => (stderr += chunk))
    const lines: string[] = []
    for await (const line of createInterface({input: child.stdout!})) lines.push(line)
    const code = await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(child.exitCode)))
    expect(lines, stderr).toEqual(['exhausted EMFILE', 'alive beating'])
    expect(code, stderr).toBe(0)
  })
})
