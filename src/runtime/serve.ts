import {mkdir, readFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import {join, resolve} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {type Identity, loadOrCreateIdentity, nodeKeyPath} from '../protocol/identity.js'
import type {NodeServicesOptions, RunningServices, ServiceUrls} from '../services/index.js'
import {type Journal, type JournalOptions, openJournal} from './journal.js'
import {LocalNode, type LocalNodeOptions} from './node.js'
import type {Tags} from '../protocol/tags.js'
import type {BrokerConfig} from '../transport/mqtt.js'
import {MqttFront} from './mqtt-front.js'
import {NodeServer, type NodeServerOptions, type RateLimit} from './server.js'
import {AllowList, allowListPath} from './server-allowlist.js'

/**
 * A whole node server without oclif: identity (key in the data dir) + node core + event journal +
 * WebSocket server and/or a front on an MQTT broker. `r1 node start` calls it; so can tests, benches and `r1 run`.
 */
export interface StartNodeServerOptions {
  /** Holds node-key.pem, allowed.json, the journal, the core's state, the replay cache and the upload spool (created if missing). */
  dataDir: string
  /** Listen for WebSocket sessions on host:port (default true). */
  listen?: boolean
  /** Also serve clients through this MQTT broker (the node dials out; mqtt-front.ts). */
  broker?: BrokerConfig
  /** Labels every heartbeat carries as R1_TAGS. */
  tags?: Tags
  host?: string
  /** 0 (default) picks a free port; the handle's `url` has the real one. */
  port?: number
  /** PEM files for wss://. */
  tlsCertPath?: string
  tlsKeyPath?: string
  alias?: string
  /** Use this identity instead of the data dir's key (e.g. an ephemeral embedded node). */
  identity?: Identity
  /** Addresses allowed in addition to allowed.json (kept in memory only; e.g. `r1 run`'s own session). */
  allow?: string[]
  skewMs?: number
  rateLimit?: Partial<RateLimit>
  pingIntervalMs?: number
  /** Back-pressure knobs of the WebSocket server (tests shrink them). */
  server?: Pick<
    NodeServerOptions,
    | 'highWaterBytes'
    | 'maxQueuedEvents'
    | 'maxConnections'
    | 'reservedConnections'
    | 'maxConnectionsPerIp'
    | 'maxPendingConnections'
    | 'authGraceMs'
    | 'replayPerSender'
    | 'uploads'
    | 'publicHeartbeatRate'
    | 'now'
  >
  heartbeatIntervalMs?: number
  /** Event journal limits (size, age, segment size); defaults in journal.ts. */
  journal?: Omit<JournalOptions, 'onWarning'>
  /** Passed to the node core (supervisor timings, instance env, …). */
  core?: Omit<LocalNodeOptions, 'address' | 'identity' | 'alias' | 'dataDir' | 'startSeq' | 'heartbeatIntervalMs'>
  /** Diagnostics (connection errors, floods); default: stderr. */
  log?: (line: string) => void
  /** Serve CStore and R1FS (backends on the data dir or NATS, HTTP APIs); undefined: the node has none. */
  services?: NodeServicesOptions
}

export interface NodeServerHandle {
  readonly address: string
  readonly alias: string
  /** `ws://host:port` or `wss://host:port`; empty when the node does not listen. */
  readonly url: string
  /** The broker front when the node serves through a broker. */
  readonly broker?: MqttFront
  readonly dataDir: string
  readonly core: LocalNode
  readonly journal: Journal
  readonly server: NodeServer
  readonly allowList: AllowList
  /** Where CStore's and R1FS's HTTP APIs listen, when the node serves them. */
  readonly services?: ServiceUrls
  /** Graceful shutdown: connections closed (1001), instances stopped, state and journal flushed. Idempotent. */
  stop(): Promise<void>
}

const packageVersion = (createRequire(import.meta.url)('../../package.json') as {version: string}).version

export async function startNodeServer(options: StartNodeServerOptions): Promise<NodeServerHandle> {
  const dataDir = resolve(options.dataDir)
  const log = options.log ?? ((line: string) => process.stderr.write(`r1 node: ${line}\n`))
  try {
    await mkdir(dataDir, {recursive: true, mode: 0o700})
  } catch (error) {
    throw new R1Error(`Cannot create the data dir ${dataDir}: ${(error as Error).message}`, ExitCode.FAILURE, {code: 'DATA_DIR', hint: 'Pick a writable --data-dir.'})
  }
  const tls = await readTls(options.tlsCertPath, options.tlsKeyPath)
  const identity = options.identity ?? (await loadOrCreateIdentity(nodeKeyPath(dataDir))).identity
  const alias = options.alias ?? `r1-${identity.address.slice(5, 11)}`
  const journal = await openJournal(join(dataDir, 'journal'), {onWarning: log, onError: (error) => log(error.message), ...options.journal})
  let services: RunningServices | undefined
  let core: LocalNode
  try {
    if (options.services) services = await (await import('../services/index.js')).startServices(dataDir, options.services, {address: identity.address, alias, version: packageVersion})
    core = await LocalNode.start({
      ...options.core,
      ...(services ? {services: services.services, serviceUrls: services} : {}),
      address: identity.address,
      identity,
      alias,
      dataDir,
      startSeq: journal.lastSeq(),
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      tags: options.tags,
      log,
      ...(journal.warning ? {warnings: [...(options.core?.warnings ?? []), journal.warning]} : {}),
    })
  } catch (error) {
    await services?.close()
    await journal.close()
    throw error
  }
  const unjournal = core.onEvent((event, json) => journal.append(event, json))
  const allowList = new AllowList(allowListPath(dataDir), options.allow ?? [], log)
  const server = new NodeServer({
    core,
    identity,
    allowList,
    dataDir,
    listen: options.listen,
    history: {id: journal.id, lastSeq: () => journal.lastSeq(), cursor: (o) => journal.cursor(o), flush: () => journal.flushQuietly()},
    host: options.host,
    port: options.port,
    tls,
    skewMs: options.skewMs,
    rateLimit: options.rateLimit,
    pingIntervalMs: options.pingIntervalMs,
    ...options.server,
    version: packageVersion,
    log,
  })
  let url: string
  try {
    url = await server.start()
  } catch (error) {
    await core.stop()
    await services?.close()
    unjournal()
    await journal.close()
    if (error instanceof R1Error) throw error
    const code = (error as NodeJS.ErrnoException).code
    throw new R1Error(`Cannot listen on ${options.host ?? '127.0.0.1'}:${options.port ?? 0}: ${(error as Error).message}`, ExitCode.FAILURE, {
      code: code === 'EADDRINUSE' ? 'PORT_IN_USE' : 'LISTEN_FAILED',
      hint: code === 'EADDRINUSE' ? 'Another process uses that port: pick another --port (0 picks a free one).' : 'Check --host and --port.',
    })
  }
  let front: MqttFront | undefined
  if (options.broker) {
    front = new MqttFront({server, identity, broker: options.broker, heartbeatIntervalMs: options.heartbeatIntervalMs, log})
    await front.start()
  }
  let stopping: Promise<void> | undefined
  return {
    address: identity.address,
    alias,
    url,
    broker: front,
    dataDir,
    core,
    journal,
    server,
    allowList,
    ...(services ? {services: {cstoreUrl: services.cstoreUrl, r1fsUrl: services.r1fsUrl}} : {}),
    stop: () =>
      (stopping ??= (async () => {
        await front?.close()
        await server.close()
        await core.stop()
        await services?.close()
        unjournal()
        await journal.close()
      })()),
  }
}

async function readTls(certPath: string | undefined, keyPath: string | undefined): Promise<{cert: Buffer; key: Buffer} | undefined> {
  if (!certPath && !keyPath) return undefined
  if (!certPath || !keyPath) {
    throw new R1Error('TLS needs both a certificate and a key', ExitCode.USAGE, {code: 'TLS_INCOMPLETE', hint: 'Pass --tls-cert <file> and --tls-key <file> together.'})
  }
  const read = async (path: string, what: string) => {
    try {
      return await readFile(path)
    } catch (error) {
      throw new R1Error(`Cannot read the TLS ${what} ${path}: ${(error as Error).message}`, ExitCode.FAILURE, {code: 'TLS_UNREADABLE'})
    }
  }
  return {cert: await read(certPath, 'certificate'), key: await read(keyPath, 'key')}
}
