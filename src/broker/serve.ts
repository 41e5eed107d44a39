import {ExitCode, R1Error} from '../errors.js'
import {defaultDataDir} from '../runtime/data-dir.js'
import {isLoopback} from '../loopback.js'
import {type BrokerOptions, startBroker} from './broker.js'
import {listUsers} from './users.js'

/** `r1 broker start`'s work, without oclif. */

export const BROKER_START_DEFAULTS = {host: '127.0.0.1', port: 1883}

export interface BrokerServeIo {
  json: boolean
  /** Stops the broker once aborted. */
  signal: AbortSignal
  /** Progress for humans (stderr; silent under --json). */
  note(message: string): void
}

/** What `r1 broker start` prints first (one JSON line under --json). */
export interface BrokerStarted {
  url: string
  wsUrl?: string
  /** Whether logins are checked (the data dir has users). */
  auth: boolean
  users: number
  dataDir: string
}

/** Starts the embedded broker, prints where it is, serves until `signal`, stops. */
export async function serveBroker(options: BrokerOptions & {host: string}, io: BrokerServeIo): Promise<void> {
  const dataDir = options.dataDir ?? defaultDataDir(process.env, 'broker')
  const users = await listUsers(dataDir)
  if (users.length === 0 && !isLoopback(options.host)) {
    throw new R1Error(`Refusing to serve an open broker on ${options.host}: ${dataDir} has no users, so anyone who reaches it could read and send every topic.`, ExitCode.USAGE, {
      code: 'BROKER_OPEN',
      hint: `Add users first (r1 broker user add <name> --role node|client --address 0xai_… --data-dir ${dataDir}), or listen on 127.0.0.1.`,
    })
  }
  const broker = await startBroker({...options, dataDir})
  try {
    const started: BrokerStarted = {url: broker.url, ...(broker.wsUrl ? {wsUrl: broker.wsUrl} : {}), auth: broker.auth, users: users.length, dataDir}
    if (io.json) process.stdout.write(JSON.stringify(started) + '\n')
    else {
      process.stdout.write(`r1 broker\n  url      ${broker.url}\n${broker.wsUrl ? `  ws       ${broker.wsUrl}\n` : ''}  data     ${dataDir}\n`)
      io.note(broker.auth ? `${users.length} user(s); logins and topic ACLs are checked. Ctrl-C stops the broker.` : 'No users: any local client may connect and use every topic (r1 broker user add sets up logins). Ctrl-C stops the broker.')
      if (broker.auth && !options.tls && !isLoopback(options.host)) io.note('Passwords cross the network in clear without --tls-cert/--tls-key.')
    }
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve()
      else io.signal.addEventListener('abort', () => resolve(), {once: true})
    })
    io.note('Stopping: disconnecting clients…')
  } finally {
    await broker.close()
  }
}
