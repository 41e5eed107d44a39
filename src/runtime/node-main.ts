import {resolve} from 'node:path'
import {ExitCode, R1Error, exitCodeOf} from '../errors.js'
import {parseTags} from '../protocol/tags.js'
import type {BrokerConfig} from '../transport/mqtt.js'
import {isLoopback} from '../loopback.js'

/**
 * `r1 node start`'s work, without oclif: the command calls `serveNode`, and bin/run.js tries
 * `fastNodeStart` first, so a node process never loads oclif (an idle node's RSS is a budget,
 * src/ARCHITECTURE.md §8: oclif costs ~8 MiB of it).
 */

export const NODE_START_DEFAULTS = {host: '127.0.0.1', port: 7443}
/** CStore and R1FS: Ratio1's ports, loopback, 1 GiB of R1FS files. */
export const SERVICES_DEFAULTS = {host: '127.0.0.1', cstorePort: 31234, r1fsPort: 31235, r1fsQuotaMib: 1024}

export interface NodeStartOptions {
  host: string
  /** Without it a node on a broker does not listen (and a node without a broker listens on the default port). */
  port?: number
  /** Serve clients through this MQTT broker too (mqtt://, mqtts://, ws://, wss://). */
  broker?: string
  brokerUser?: string
  /** File holding the broker password (its first line). */
  brokerPasswordFile?: string
  /** PEM CA for mqtts:// and wss:// brokers. */
  brokerCa?: string
  topicRoot?: string
  /** `k=v` labels for heartbeats (R1_TAGS). */
  tags?: string[]
  /** Heartbeat period in seconds (default 10). */
  heartbeatInterval?: number
  dataDir?: string
  tlsCert?: string
  tlsKey?: string
  alias?: string
  /** The user instances run as: a name, `uid[:gid]`, or `none` (the node's own user). Default: `nobody` when root, else the node's user. */
  runAs?: string
  /** Memory cap (MiB) of instances whose config sets no MAX_MEMORY_MB. */
  maxMemoryMb?: number
  /** Disk space (MiB) all stored bundles may take. */
  bundleQuotaMib?: number
  /** Interface CStore's and R1FS's HTTP APIs listen on (default loopback). */
  servicesHost?: string
  /** Default 31234 (Ratio1's), or a free port when `port` is 0. */
  cstorePort?: number
  /** Default 31235 (Ratio1's), or a free port when `port` is 0. */
  r1fsPort?: number
  /** `nats://…`: CStore in NATS JetStream key-value; default embedded on the data dir. */
  cstore?: string
  /** `nats://…`: R1FS in NATS JetStream object store; default embedded on the data dir. */
  r1fs?: string
  /** Disk space (MiB) all R1FS files may take (default 1024). */
  r1fsQuotaMib?: number
}

export interface ServeIo {
  json: boolean
  /** Ends the node gracefully once aborted. */
  signal: AbortSignal
  /** Progress for humans (stderr; silent under --json). */
  note(message: string): void
}

/** Starts the node server, prints where it is (one JSON line under --json), serves until `signal`, stops. */
export async function serveNode(options: NodeStartOptions, io: ServeIo): Promise<void> {
  const [{defaultDataDir}, {startNodeServer}] = await Promise.all([import('./data-dir.js'), import('./serve.js')])
  const dataDir = options.dataDir ?? defaultDataDir()
  const runAs = options.runAs === 'none' ? false : options.runAs
  const user = await checkRunAs(runAs)
  const broker = options.broker === undefined ? undefined : await brokerOf(options)
  const tags = parseTags(options.tags ?? [])
  const node = await startNodeServer({
    dataDir,
    listen: options.port !== undefined || !broker,
    broker,
    tags,
    heartbeatIntervalMs: options.heartbeatInterval === undefined ? undefined : options.heartbeatInterval * 1000,
    host: options.host,
    port: options.port ?? NODE_START_DEFAULTS.port,
    tlsCertPath: options.tlsCert,
    tlsKeyPath: options.tlsKey,
    alias: options.alias,
    core: {
      supervisor: {runAs, ...(options.maxMemoryMb === undefined ? {} : {maxMemoryMb: options.maxMemoryMb})},
      ...(options.bundleQuotaMib === undefined ? {} : {bundles: {quotaBytes: options.bundleQuotaMib * 1024 * 1024}}),
    },
    services: {
      host: options.servicesHost ?? SERVICES_DEFAULTS.host,
      // an ephemeral node (--port 0) gets ephemeral service ports too, so that several run side by side
      cstorePort: options.cstorePort ?? (options.port === 0 ? 0 : SERVICES_DEFAULTS.cstorePort),
      r1fsPort: options.r1fsPort ?? (options.port === 0 ? 0 : SERVICES_DEFAULTS.r1fsPort),
      cstore: options.cstore,
      r1fs: options.r1fs,
      quotaBytes: (options.r1fsQuotaMib ?? SERVICES_DEFAULTS.r1fsQuotaMib) * 1024 * 1024,
    },
  }).catch(async (error: unknown) => {
    throw await nodeKeyAdvice(error, dataDir)
  })
  try {
    const {cstoreUrl, r1fsUrl} = node.services!
    const shown = {address: node.address, url: node.url || null, alias: node.alias, cstoreUrl, r1fsUrl, ...(broker ? {broker: broker.url, topicRoot: node.broker!.topics.root} : {}), ...(Object.keys(tags).length > 0 ? {tags} : {})}
    if (io.json) process.stdout.write(JSON.stringify(shown) + '\n')
    else {
      const lines = [`r1 node ${node.alias}`, `  address  ${node.address}`, ...(node.url ? [`  url      ${node.url}`] : []), ...(broker ? [`  broker   ${broker.url} (topics under ${node.broker!.topics.root}/)`] : []), `  cstore   ${cstoreUrl}`, `  r1fs     ${r1fsUrl}`, `  data     ${node.dataDir}`]
      process.stdout.write(lines.join('\n') + '\n')
      const allowed = node.allowList.size()
      io.note(user ? `Instances run as ${user.name} (uid ${user.uid}, gid ${user.gid}).` : `Instances run as this node's own user (uid ${process.getuid?.() ?? '?'}).`)
      io.note(allowed === 0 ? `No address is allowed to send commands yet: r1 node allow <address> --data-dir ${node.dataDir}` : `${allowed} address(es) allowed. Ctrl-C stops the node.`)
    }
    const servicesHost = options.servicesHost ?? SERVICES_DEFAULTS.host
    if (!isLoopback(servicesHost)) io.note(`CStore and R1FS listen on ${servicesHost} with no authentication (as on Ratio1): anyone who reaches those ports can read and write them. Keep them behind a firewall, or use --services-host 127.0.0.1.`)
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve()
      else io.signal.addEventListener('abort', () => resolve(), {once: true})
    })
    io.note('Stopping: closing sessions and instances…')
  } finally {
    await node.stop()
  }
}

/** The broker settings of `--broker …`: URL checked, password read from its file (never from the command line). */
async function brokerOf(options: NodeStartOptions): Promise<BrokerConfig> {
  const {checkBrokerUrl} = await import('../transport/mqtt.js')
  checkBrokerUrl(options.broker!, '--broker')
  const {readFile} = await import('node:fs/promises')
  const read = async (file: string, flag: string) => {
    try {
      return await readFile(file)
    } catch (error) {
      throw new R1Error(`${flag} ${file}: ${(error as Error).message}`, ExitCode.USAGE, {code: 'BROKER_FILE_UNREADABLE', hint: `Pass ${flag} with a readable file.`})
    }
  }
  const password = options.brokerPasswordFile === undefined ? undefined : (await read(options.brokerPasswordFile, '--broker-password-file')).toString('utf8').split(/\r?\n/)[0]!
  const {topics} = await import('../protocol/topics.js')
  try {
    topics(options.topicRoot)
  } catch (error) {
    throw new R1Error(`--topic-root: ${(error as Error).message}`, ExitCode.USAGE, {code: 'BAD_TOPIC_ROOT', hint: 'e.g. --topic-root naeural (the default) or --topic-root fleet/site-a'})
  }
  return {
    url: options.broker!,
    ...(options.brokerUser === undefined ? {} : {user: options.brokerUser}),
    ...(password === undefined ? {} : {password}),
    ...(options.brokerCa === undefined ? {} : {ca: await read(options.brokerCa, '--broker-ca')}),
    ...(options.topicRoot === undefined ? {} : {root: options.topicRoot}),
  }
}

/**
 * The user instances will run as, checked before the node starts: an unknown user, or another user
 * than this process's without root, would otherwise fail only once an instance starts.
 */
async function checkRunAs(runAs: string | false | undefined): Promise<{name: string; uid: number; gid: number} | undefined> {
  const {instanceUser} = await import('./containment.js')
  const hint = 'Pass --run-as <user name | uid[:gid]> of an existing user, or --run-as none to keep the node\'s own user.'
  let user: ReturnType<typeof instanceUser>
  try {
    user = instanceUser(runAs)
  } catch (error) {
    throw new R1Error(`--run-as ${String(runAs)}: ${(error as Error).message}`, ExitCode.USAGE, {code: 'RUN_AS_UNKNOWN', hint})
  }
  const self = process.getuid?.()
  if (user && self !== undefined && self !== 0 && (user.uid !== self || user.gid !== process.getgid?.())) {
    throw new R1Error(`--run-as ${String(runAs)}: only a node running as root can run instances as another user (this one runs as uid ${self})`, ExitCode.USAGE, {code: 'RUN_AS_NOT_ROOT', hint: 'Start the node as root, or leave --run-as out (instances then run as the node\'s own user).'})
  }
  const unreachable = user && (await import('./containment.js')).runAsProblem(user)
  if (unreachable) {
    throw new R1Error(`Instances would run as ${user!.name}, who cannot ${unreachable}`, ExitCode.USAGE, {
      code: 'RUN_AS_CANNOT_RUN',
      hint: `Install node and r1 where ${user!.name} can read them (not under a private home such as /root), pick another --run-as, or --run-as none.`,
    })
  }
  return user
}

/**
 * A node key that cannot be read gets the node's own remedy: the identity code's hint names
 * `r1 keys generate --force`, which replaces the CLI's key, not this one.
 */
async function nodeKeyAdvice(error: unknown, dataDir: string): Promise<unknown> {
  if (!(error instanceof R1Error) || (error.code !== 'KEY_INVALID' && error.code !== 'KEY_UNREADABLE')) return error
  const {nodeKeyPath} = await import('../protocol/identity.js') // already loaded by the server
  const key = nodeKeyPath(resolve(dataDir))
  if (!error.message.includes(key)) return error
  return new R1Error(error.message, error.exitCode, {
    code: error.code,
    hint:
      error.code === 'KEY_UNREADABLE'
        ? `Make ${key} readable by the user running the node.`
        : `Restore the node's key from a backup, or move it aside so the node makes a new one: mv ${key} ${key}.bad. A new key gives the node a new address: every client that pins it (targets in config.yaml, --address) must be updated.`,
    details: error.details,
    cause: error,
  })
}

const VALUE_FLAGS = {
  '--host': 'host',
  '--port': 'port',
  '--data-dir': 'dataDir',
  '--tls-cert': 'tlsCert',
  '--tls-key': 'tlsKey',
  '--alias': 'alias',
  '--run-as': 'runAs',
  '--max-memory-mb': 'maxMemoryMb',
  '--bundle-quota': 'bundleQuotaMib',
  '--broker': 'broker',
  '--broker-user': 'brokerUser',
  '--broker-password-file': 'brokerPasswordFile',
  '--broker-ca': 'brokerCa',
  '--topic-root': 'topicRoot',
  '--tag': 'tags',
  '--heartbeat-interval': 'heartbeatInterval',
  '--services-host': 'servicesHost',
  '--cstore-port': 'cstorePort',
  '--r1fs-port': 'r1fsPort',
  '--cstore': 'cstore',
  '--r1fs': 'r1fs',
  '--r1fs-quota': 'r1fsQuotaMib',
} as const

/** Positive integers as oclif's `Flags.integer({min: 1})` takes them (anything else is left to oclif). */
const POSITIVE_INTEGER = /^0*[1-9]\d{0,8}$/

/**
 * `r1 node start [--host H] [--port N] [--data-dir D] [--tls-cert C --tls-key K] [--alias A] [--run-as U]
 * [--max-memory-mb N] [--bundle-quota N] [--broker URL [--broker-user U] [--broker-password-file F] [--broker-ca C]
 * [--topic-root R]] [--tag k=v]… [--heartbeat-interval S] [--services-host H] [--cstore-port N] [--r1fs-port N]
 * [--cstore URL] [--r1fs URL] [--r1fs-quota N] [--json]`
 * for bin/run.js; returns the exit code. Returns undefined, having done nothing, for anything else
 * (--help, other flags, a value oclif would refuse), which oclif then handles as usual.
 */
export async function fastNodeStart(argv: readonly string[]): Promise<number | undefined> {
  if (argv[0] !== 'node' || argv[1] !== 'start') return undefined
  const options: NodeStartOptions = {host: NODE_START_DEFAULTS.host}
  let json = false
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--json') {
      json = true
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    const key = VALUE_FLAGS[name as keyof typeof VALUE_FLAGS]
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1)
    if (!key || value === undefined || value === '' || value.startsWith('-')) return undefined
    if (key === 'port' || key === 'cstorePort' || key === 'r1fsPort') {
      if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) return undefined
      options[key] = Number(value)
    } else if (key === 'maxMemoryMb' || key === 'bundleQuotaMib' || key === 'heartbeatInterval' || key === 'r1fsQuotaMib') {
      if (!POSITIVE_INTEGER.test(value)) return undefined
      options[key] = Number(value)
    } else if (key === 'tags') (options.tags ??= []).push(value)
    else options[key] = value
  }
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) return undefined
  if (options.broker === undefined && (options.brokerUser ?? options.brokerPasswordFile ?? options.brokerCa ?? options.topicRoot) !== undefined) return undefined

  const interrupt = new AbortController()
  const onSignal = () => {
    if (interrupt.signal.aborted) process.exit(ExitCode.INTERRUPTED) // second Ctrl-C: leave now
    interrupt.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    await serveNode(options, {json, signal: interrupt.signal, note: (message) => json || process.stderr.write(message + '\n')})
    return ExitCode.OK
  } catch (error) {
    const {errorJson, errorText} = await import('../ui/error-report.js')
    if (json) process.stdout.write(JSON.stringify(errorJson(error), null, 2) + '\n')
    else process.stderr.write(errorText(error as Error))
    return exitCodeOf(error)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
