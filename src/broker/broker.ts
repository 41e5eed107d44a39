import {once} from 'node:events'
import {readFile} from 'node:fs/promises'
import {createServer as createHttpServer, type IncomingMessage, type Server as HttpServer} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import {type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket} from 'node:net'
import type {Duplex} from 'node:stream'
import {createServer as createTlsServer} from 'node:tls'
import {Aedes, type AedesOptions, type AuthenticateError, type Client} from 'aedes'
import {createWebSocketStream, WebSocketServer} from 'ws'
import {ExitCode, R1Error} from '../errors.js'
import {isLoopback} from '../loopback.js'
import {guardPacketSize, MAX_BROKER_PACKET_BYTES} from '../transport/mqtt.js'
import {type AclRule, aclRules, mayPublish, maySubscribe, topicsUnder} from './acl.js'
import {UserStore} from './users.js'

/**
 * r1's embedded MQTT broker (aedes, MQTT 3.1.1, in memory) for development, tests and small fleets:
 * TCP or TLS (`mqtt://`, `mqtts://`) and optionally WebSocket or secure WebSocket (`ws://`, `wss://`,
 * any path). While its data dir has users it refuses anonymous and wrong logins and holds each user to
 * the ACL of its role (acl.ts), re-reading the users at each login; without users it is open on
 * loopback and refuses every login elsewhere.
 */

export interface BrokerOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string
  /** MQTT port (0 picks a free one). */
  port?: number
  /** Also serve MQTT over WebSocket on this port (0 picks a free one). */
  wsPort?: number
  /** PEM files: serve mqtts:// (and wss:// when wsPort is set) instead of plain TCP and ws://. */
  tls?: {cert: string; key: string}
  /** Folder holding `users.json` (`r1 broker user add`): logins and ACLs come from it. */
  dataDir?: string
  /** Topic root the ACLs are written for (default `naeural`). */
  topicRoot?: string
}

export interface RunningBroker {
  /** `mqtt://host:port` or `mqtts://host:port`. */
  url: string
  /** `ws://host:port` or `wss://host:port` when a WebSocket port was asked for. */
  wsUrl?: string
  /** Whether logins were checked when it started (the data dir had users). */
  auth: boolean
  /** Disconnects every client and stops listening. */
  close(): Promise<void>
}

/** Ratio1 client ids are longer than MQTT 3.1.1's 23 characters. */
const MAX_CLIENT_ID_LENGTH = 256

/** Each logged-in client's ACL; `open` for a client let in while the data dir had no users. */
const grants = new WeakMap<Client, AclRule[] | 'open'>()

export async function startBroker(options: BrokerOptions = {}): Promise<RunningBroker> {
  const host = options.host ?? '127.0.0.1'
  topicsUnder(options.topicRoot)
  const users = options.dataDir === undefined ? undefined : new UserStore(options.dataDir)
  const auth = users !== undefined && (await users.hasUsers())
  const tls = options.tls && (await readTls(options.tls))

  const acl = users ? checks(users, options.topicRoot, isLoopback(host)) : undefined
  const broker = await Aedes.createBroker({
    maxClientsIdLength: MAX_CLIENT_ID_LENGTH,
    // r1 uses clean sessions only: a kept session would queue QoS 1 messages without bound while its client is away
    preConnect: (_client, packet, done) => done(null, packet.clean !== false),
    ...acl,
    authorizePublish(client, packet, done) {
      // r1 never retains; a retained message would stay in memory for good, one for every topic a client may write
      packet.retain = false
      if (acl) acl.authorizePublish(client, packet, done)
      else done(null)
    },
  })
  const sockets = new Set<Socket>()
  const track = (socket: Socket): void => {
    socket.setNoDelay(true) // a QoS 1 exchange is small packets both ways: Nagle would hold each one back
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  }

  // a packet's size is checked as its header arrives: aedes' parser would otherwise hold up to 256 MiB per connection, before any login
  const handle = (stream: Duplex, request?: IncomingMessage) => broker.handle(guardPacketSize(stream, MAX_BROKER_PACKET_BYTES), request)
  const mqttServer: NetServer = tls ? createTlsServer(tls, (socket) => handle(socket)) : createNetServer((socket) => handle(socket))
  mqttServer.on(tls ? 'secureConnection' : 'connection', track)
  let wsServer: HttpServer | undefined
  let wss: WebSocketServer | undefined
  try {
    const port = await listen(mqttServer, host, options.port ?? 0)
    let wsUrl: string | undefined
    if (options.wsPort !== undefined) {
      wsServer = tls ? createHttpsServer(tls) : createHttpServer()
      wss = new WebSocketServer({server: wsServer, maxPayload: MAX_BROKER_PACKET_BYTES})
      wss.on('connection', (socket, request) => {
        const stream = createWebSocketStream(socket)
        stream.on('error', () => socket.terminate())
        handle(stream, request)
      })
      wsServer.on('connection', track)
      wsUrl = `${tls ? 'wss' : 'ws'}://${urlHost(host)}:${await listen(wsServer, host, options.wsPort)}`
    }
    let closed: Promise<void> | undefined
    return {
      url: `${tls ? 'mqtts' : 'mqtt'}://${urlHost(host)}:${port}`,
      ...(wsUrl ? {wsUrl} : {}),
      auth,
      close: () => (closed ??= shutdown()),
    }
  } catch (error) {
    await shutdown()
    throw error
  }

  async function shutdown(): Promise<void> {
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    wss?.close()
    for (const socket of sockets) socket.destroy()
    await Promise.all([mqttServer, wsServer].map((server) => server?.listening && new Promise((resolve) => server.close(resolve))))
  }
}

/** The aedes hooks that check logins and hold each user to its ACL. */
function checks(users: UserStore, topicRoot: string | undefined, openWhenNoUsers: boolean): Required<Pick<AedesOptions, 'authenticate' | 'authorizeSubscribe' | 'authorizePublish'>> {
  return {
    authenticate(client, username, password, done) {
      const login = async (): Promise<AclRule[] | 'open' | undefined> => {
        if (!(await users.hasUsers())) return openWhenNoUsers ? 'open' : undefined
        const identity = await users.verify(username, password)
        return identity && aclRules(identity, topicRoot)
      }
      login().then(
        (grant) => {
          if (!grant) return done(Object.assign(new Error('bad user name or password'), {returnCode: 4 /* BAD_USERNAME_OR_PASSWORD */}) as AuthenticateError, false)
          grants.set(client, grant)
          done(null, true)
        },
        (error: Error) => done(Object.assign(error, {returnCode: 3 /* SERVER_UNAVAILABLE */}) as AuthenticateError, false),
      )
    },
    authorizeSubscribe(client, subscription, done) {
      const grant = grants.get(client)
      // A refused filter gets SUBACK 0x80 (failure); the connection stays up.
      done(null, grant === 'open' || (grant && maySubscribe(grant, subscription.topic)) ? subscription : null)
    },
    authorizePublish(client, packet, done) {
      // client is null for the broker's own messages ($SYS)
      const grant = client && grants.get(client)
      if (client === null || grant === 'open' || (grant && mayPublish(grant, packet.topic))) done(null)
      else done(new Error(`publish to ${packet.topic} is not allowed`)) // MQTT 3.1.1 has no refusal: aedes closes the connection
    },
  }
}

async function readTls(files: {cert: string; key: string}): Promise<{cert: Buffer; key: Buffer}> {
  const read = (what: string, file: string): Promise<Buffer> =>
    readFile(file).catch((error: NodeJS.ErrnoException) => {
      throw new R1Error(`Cannot read the TLS ${what} ${file}: ${error.code ?? error.message}`, ExitCode.USAGE, {code: 'BROKER_TLS_FILE'})
    })
  return {cert: await read('certificate', files.cert), key: await read('key', files.key)}
}

async function listen(server: NetServer, host: string, port: number): Promise<number> {
  server.listen(port, host)
  try {
    await once(server, 'listening')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new R1Error(`Cannot listen on ${host}:${port}: ${code ?? (error as Error).message}`, ExitCode.FAILURE, {
      code: 'BROKER_LISTEN',
      hint: code === 'EADDRINUSE' ? 'Another process uses that port: pick another (--port 0 picks a free one).' : undefined,
    })
  }
  return (server.address() as AddressInfo).port
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
