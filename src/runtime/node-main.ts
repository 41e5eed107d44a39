import {resolve} from 'node:path'
import {ExitCode, R1Error, exitCodeOf} from '../errors.js'

/**
 * `r1 node start`'s work, without oclif: the command calls `serveNode`, and bin/run.js tries
 * `fastNodeStart` first, so a node process never loads oclif (an idle node's RSS is a budget,
 * src/ARCHITECTURE.md §8: oclif costs ~8 MiB of it).
 */

export const NODE_START_DEFAULTS = {host: '127.0.0.1', port: 7443}

export interface NodeStartOptions {
  host: string
  port: number
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
  /** Seconds between heartbeats (default 10). */
  heartbeatInterval?: number
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
  const node = await startNodeServer({
    dataDir,
    host: options.host,
    port: options.port,
    tlsCertPath: options.tlsCert,
    tlsKeyPath: options.tlsKey,
    alias: options.alias,
    ...(options.heartbeatInterval === undefined ? {} : {heartbeatIntervalMs: options.heartbeatInterval * 1000}),
    core: {
      supervisor: {runAs, ...(options.maxMemoryMb === undefined ? {} : {maxMemoryMb: options.maxMemoryMb})},
      ...(options.bundleQuotaMib === undefined ? {} : {bundles: {quotaBytes: options.bundleQuotaMib * 1024 * 1024}}),
    },
  }).catch(async (error: unknown) => {
    throw await nodeKeyAdvice(error, dataDir)
  })
  try {
    if (io.json) process.stdout.write(JSON.stringify({address: node.address, url: node.url, alias: node.alias}) + '\n')
    else {
      process.stdout.write(`r1 node ${node.alias}\n  address  ${node.address}\n  url      ${node.url}\n  data     ${node.dataDir}\n`)
      const allowed = node.allowList.size()
      io.note(user ? `Instances run as ${user.name} (uid ${user.uid}, gid ${user.gid}).` : `Instances run as this node's own user (uid ${process.getuid?.() ?? '?'}).`)
      io.note(allowed === 0 ? `No address is allowed to send commands yet: r1 node allow <address> --data-dir ${node.dataDir}` : `${allowed} address(es) allowed. Ctrl-C stops the node.`)
    }
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve()
      else io.signal.addEventListener('abort', () => resolve(), {once: true})
    })
    io.note('Stopping: closing sessions and instances…')
  } finally {
    await node.stop()
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
  '--heartbeat-interval': 'heartbeatInterval',
} as const

/** Positive integers as oclif's `Flags.integer({min: 1})` takes them (anything else is left to oclif). */
const POSITIVE_INTEGER = /^0*[1-9]\d{0,8}$/

/**
 * `r1 node start [--host H] [--port N] [--data-dir D] [--tls-cert C --tls-key K] [--alias A] [--run-as U]
 * [--max-memory-mb N] [--bundle-quota N] [--heartbeat-interval N] [--json]`
 * for bin/run.js; returns the exit code. Returns undefined, having done nothing, for anything else
 * (--help, other flags, a value oclif would refuse), which oclif then handles as usual.
 */
export async function fastNodeStart(argv: readonly string[]): Promise<number | undefined> {
  if (argv[0] !== 'node' || argv[1] !== 'start') return undefined
  const options: NodeStartOptions = {...NODE_START_DEFAULTS}
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
    if (key === 'port') {
      if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) return undefined
      options.port = Number(value)
    } else if (key === 'maxMemoryMb' || key === 'bundleQuotaMib' || key === 'heartbeatInterval') {
      if (!POSITIVE_INTEGER.test(value)) return undefined
      options[key] = Number(value)
    } else options[key] = value
  }
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) return undefined

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
