// A real nats-server with JetStream on 127.0.0.1 (Debian's, 2.9), for the services bench and the NATS backend tests.
import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {connect, createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/** Why NATS cannot be used here (no nats-server binary), or undefined when it can. */
export function natsMissing() {
  const found = spawnSync('nats-server', ['--version'], {encoding: 'utf8'})
  return found.error ? `nats-server is not installed (${found.error.message}): the NATS backend is skipped` : undefined
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address()
      server.close(() => resolve(port))
    })
  })
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Starts `nats-server -js` on a free port with its store in a temp dir; resolves with `{url, stop()}` (stop ends it and removes the dir). */
export async function startNatsServer() {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'r1-nats-'))
  const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], {stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  for (let i = 0; !(await accepts(port)); i++) {
    if (child.exitCode !== null || i > 200) {
      child.kill('SIGKILL')
      rmSync(dir, {recursive: true, force: true})
      throw new Error(`nats-server did not start: ${stderr}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM')
      await exited
      rmSync(dir, {recursive: true, force: true})
    },
  }
}
