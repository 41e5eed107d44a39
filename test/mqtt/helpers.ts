// An in-process aedes broker on 127.0.0.1 for the broker-transport tests (restartable on the same
// port), and Debian's mosquitto when installed.
import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {createServer as createHttpServer, type IncomingMessage} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import {createServer, type AddressInfo, type Server, type Socket} from 'node:net'
import {join} from 'node:path'
import type {Duplex} from 'node:stream'
import {createServer as createTlsServer} from 'node:tls'
import {Aedes} from 'aedes'
import {createWebSocketStream, WebSocketServer} from 'ws'

export interface TestBroker {
  url: string
  port: number
  /** Stops the broker (every client is dropped, sessions forgotten). */
  stop(): Promise<void>
  /** Starts it again on the same port. */
  restart(): Promise<void>
}

export interface AedesOptions {
  port?: number
  /** Only this user and password get in. */
  credentials?: {user: string; password: string}
  /** How clients reach it (default mqtt): TLS and WebSocket need `tls` for mqtts and wss. */
  transport?: 'mqtt' | 'mqtts' | 'ws' | 'wss'
  tls?: {cert: string; key: string}
}

/** aedes on 127.0.0.1 (port 0 the first time), with client ids as long as any, over TCP, TLS, WebSocket or secure WebSocket. */
export async function startAedes(options: AedesOptions = {}): Promise<TestBroker> {
  const {credentials, transport = 'mqtt'} = options
  let broker: Awaited<ReturnType<typeof Aedes.createBroker>> | undefined
  let server: Server | undefined
  const sockets = new Set<Socket>()
  const listen = async (on: number) => {
    broker = await Aedes.createBroker({
      maxClientsIdLength: 256,
      ...(credentials ? {authenticate: (_client, user, password, done) => done(null, user === credentials.user && password?.toString() === credentials.password)} : {}),
    })
    const handle = broker.handle as (stream: Duplex, req?: IncomingMessage) => void
    const tls = options.tls ? {cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key)} : undefined
    if (transport === 'mqtt') server = createServer(handle)
    else if (transport === 'mqtts') server = createTlsServer(tls!, handle)
    else {
      const http = transport === 'wss' ? createHttpsServer(tls!) : createHttpServer()
      new WebSocketServer({server: http}).on('connection', (ws, req) => handle(createWebSocketStream(ws), req))
      server = http
    }
    server.on(transport === 'mqtts' || transport === 'wss' ? 'secureConnection' : 'connection', (socket: Socket) => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    })
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject)
      server!.listen(on, '127.0.0.1', () => resolve())
    })
    return (server.address() as AddressInfo).port
  }
  const actual = await listen(options.port ?? 0)
  const stop = async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
    await new Promise<void>((resolve) => (broker ? broker.close(() => resolve()) : resolve()))
    server = undefined
    broker = undefined
  }
  return {
    url: `${transport}://127.0.0.1:${actual}`,
    port: actual,
    stop,
    restart: async () => {
      await stop()
      await listen(actual)
    },
  }
}

/** Debian's mosquitto on a free port with the queue settings that stop silent drops; undefined (and why) when it is not installed. */
export async function startMosquitto(dir: string): Promise<TestBroker | {skip: string}> {
  const binary = '/usr/sbin/mosquitto'
  if (!existsSync(binary)) return {skip: `${binary} is not installed`}
  const port = await freePort()
  const config = join(dir, 'mosquitto.conf')
  writeFileSync(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 0', 'max_inflight_messages 0', 'max_packet_size 4194304', 'persistence false', ''].join('\n'))
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn(binary, ['-c', config], {stdio: ['ignore', 'ignore', 'pipe']})
    await waitForPort(port)
  }
  const stop = async () => {
    const running = child
    if (!running || running.exitCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGTERM')
    await exited
  }
  await start()
  return {url: `mqtt://127.0.0.1:${port}`, port, stop, restart: async () => (await stop(), await start())}
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const {port} = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createServer().listen(port, '127.0.0.1')
      socket.once('listening', () => socket.close(() => resolve(false)))
      socket.once('error', () => resolve(true))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`)
}
