// Real servers the bench and the tests run as child processes on free 127.0.0.1 ports: Debian's nats-server
// (JetStream on, and its MQTT listener when asked) and Mosquitto. Each can restart on the same ports; when
// its binary is not installed, serverMissing() says so and why, so the caller skips instead of failing.
import {spawn} from 'node:child_process'
import {accessSync, constants, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {connect, createServer} from 'node:net'
import {tmpdir, userInfo} from 'node:os'
import {basename, delimiter, join} from 'node:path'

/**
 * @typedef {object} ServedProcess
 * @property {string} url the main listener: `nats://` for nats-server, `mqtt://` for Mosquitto
 * @property {() => Promise<void>} stop kills it (SIGKILL: every client is dropped) and removes its temp dir
 * @property {() => Promise<void>} restart kills it and starts it again on the same ports with the same files
 */

/**
 * A free TCP port on 127.0.0.1 (taken from the kernel, then released).
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = /** @type {import('node:net').AddressInfo} */ (server.address())
      server.close(() => resolve(port))
    })
  })
}

/** The path of an installed binary (PATH, then the sbin folders Debian puts daemons in), or undefined. */
function findBinary(name) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin']
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(join(dir, name), constants.X_OK)
      return join(dir, name)
    } catch {
      // not in this folder
    }
  }
  return undefined
}

/**
 * Why `binary` cannot be started here (it is not installed), or undefined when it can.
 * @param {'nats-server' | 'mosquitto'} binary
 * @returns {string | undefined}
 */
export function serverMissing(binary) {
  return findBinary(binary) ? undefined : `${binary} is not installed (apt-get install ${binary})`
}

/**
 * nats-server with JetStream (its store in a temp dir) on a free port; with `mqtt`, also its MQTT listener
 * (which needs JetStream and a server name) on another. Throws when the binary is not installed.
 * @param {{mqtt?: boolean}} [options]
 * @returns {Promise<ServedProcess & {mqttUrl?: string}>}
 */
export async function startNatsServer(options = {}) {
  const binary = installed('nats-server')
  const dir = mkdtempSync(join(tmpdir(), 'r1-nats-'))
  const port = await freePort()
  const mqttPort = options.mqtt ? await freePort() : undefined
  const config = [
    'server_name: r1',
    `listen: "127.0.0.1:${port}"`,
    `jetstream {\n  store_dir: "${join(dir, 'jetstream')}"\n}`,
    ...(mqttPort ? [`mqtt {\n  listen: "127.0.0.1:${mqttPort}"\n}`] : []),
  ]
  writeFileSync(join(dir, 'nats.conf'), config.join('\n') + '\n')
  const served = await serve(binary, ['-c', join(dir, 'nats.conf')], dir, [port, ...(mqttPort ? [mqttPort] : [])])
  return {url: `nats://127.0.0.1:${port}`, ...(mqttPort ? {mqttUrl: `mqtt://127.0.0.1:${mqttPort}`} : {}), ...served}
}

/**
 * Mosquitto with a temp config on a free port: no persistence, no queue limit (`max_queued_messages 0`, so
 * QoS 1 traffic to a slow subscriber is never dropped), a bounded in-flight window; with `wsPort`, also a
 * WebSocket listener; with `passwordFile` (and `aclFile`), logins (and ACLs). Throws when the binary is not
 * installed.
 * @param {{wsPort?: boolean; passwordFile?: string; aclFile?: string}} [options]
 * @returns {Promise<ServedProcess & {wsUrl?: string}>}
 */
export async function startMosquitto(options = {}) {
  const binary = installed('mosquitto')
  const dir = mkdtempSync(join(tmpdir(), 'r1-mosquitto-'))
  const port = await freePort()
  const wsPort = options.wsPort ? await freePort() : undefined
  const config = [
    'per_listener_settings false',
    // Run as root, Mosquitto would switch to its own user and could not read the caller's temp files.
    `user ${userInfo().username}`,
    `listener ${port} 127.0.0.1`,
    ...(wsPort ? [`listener ${wsPort} 127.0.0.1`, 'protocol websockets'] : []),
    'persistence false',
    'max_queued_messages 0',
    'max_queued_bytes 0',
    'max_inflight_messages 100',
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    ...(options.passwordFile ? ['allow_anonymous false', `password_file ${options.passwordFile}`] : ['allow_anonymous true']),
    ...(options.aclFile ? [`acl_file ${options.aclFile}`] : []),
  ]
  writeFileSync(join(dir, 'mosquitto.conf'), config.join('\n') + '\n')
  const served = await serve(binary, ['-c', join(dir, 'mosquitto.conf')], dir, [port, ...(wsPort ? [wsPort] : [])])
  return {url: `mqtt://127.0.0.1:${port}`, ...(wsPort ? {wsUrl: `ws://127.0.0.1:${wsPort}`} : {}), ...served}
}

/**
 * The path of `binary`; throws (saying why) when it is not installed.
 * @param {'nats-server' | 'mosquitto'} binary
 * @returns {string}
 */
function installed(binary) {
  const path = findBinary(binary)
  if (!path) throw new Error(serverMissing(binary))
  return path
}

/**
 * Runs `binary args` until stopped, restartable; resolves once it accepts TCP on every one of `ports`.
 * A child that exits first (or is not up in 15 s) fails with its stderr; `dir` is removed on stop or failure.
 * @param {string} binary its path
 * @param {string[]} args
 * @param {string} dir
 * @param {number[]} ports
 * @returns {Promise<Pick<ServedProcess, 'stop' | 'restart'>>}
 */
async function serve(binary, args, dir, ports) {
  /** @type {import('node:child_process').ChildProcess} */
  let child
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
  const start = async () => {
    child = spawn(binary, args, {stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr?.on('data', (chunk) => (stderr += chunk))
    const deadline = Date.now() + 15_000
    for (const port of ports) {
      while (!(await accepts(port))) {
        if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
          await kill()
          throw new Error(`${basename(binary)} did not start on 127.0.0.1:${port}: ${stderr.trim() || `exit ${child.exitCode ?? child.signalCode}`}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
  try {
    await start()
  } catch (error) {
    rmSync(dir, {recursive: true, force: true})
    throw error
  }
  return {
    async stop() {
      await kill()
      rmSync(dir, {recursive: true, force: true})
    },
    async restart() {
      await kill()
      await start()
    },
  }
}

/** Whether something accepts a TCP connection on 127.0.0.1:`port`. */
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
