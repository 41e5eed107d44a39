import {X509Certificate} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {ExitCode, R1Error} from '../errors.js'
import {type Identity, cliKeyPath, requireIdentity} from '../protocol/identity.js'
import {type Action, FEATURE_PIPELINE_FAILURES, type HeartbeatResult, type PayloadOf, type QueryAction, type ResultOf, type StateResult} from '../protocol/messages.js'
import {Session, type StateQuery} from '../session/index.js'
import type {BrokerConfig} from '../transport/mqtt.js'
import type {Connect, NodeLink} from '../fleet/engine.js'
import type {Target, TargetBroker} from './targets.js'

export interface ConnectorOptions {
  connectTimeoutMs?: number
  /** How long a single request (state, bundle chunk, command acceptance) may take before it is an error (exit 5); default 30 s, or the connect timeout when longer (a fleet slow to answer is slow throughout). */
  requestTimeoutMs?: number
  /** PEM file of a CA to trust for wss:// (a node's self-signed certificate). */
  caFile?: string
  ca?: string | Buffer
}

/**
 * The session client as a NodeLink: loads the CLI key once (R1_CONFIG_DIR or the XDG config dir)
 * and connects per target; the session checks the node's signed hello against the target address.
 */
export async function connector(options: ConnectorOptions = {}): Promise<Connect> {
  const ca = options.caFile ? await readCa(options.caFile) : options.ca
  return sessionConnector(await requireIdentity(cliKeyPath()), {...options, ca})
}

/** Reads a `--ca` PEM file: a usage error (exit 2) naming the file when it cannot be read or holds no valid certificate. */
export async function readCa(file: string): Promise<Buffer> {
  const hint = "Pass --ca <file> with a PEM certificate (e.g. the node's --tls-cert)."
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (error) {
    throw new R1Error(`Cannot read the CA file ${file}: ${(error as Error).message}`, ExitCode.USAGE, {code: 'CA_UNREADABLE', hint})
  }
  const blocks = bytes.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []
  const invalid = (why: string) => new R1Error(`The CA file ${file} ${why}`, ExitCode.USAGE, {code: 'CA_INVALID', hint, details: {file}})
  if (blocks.length === 0) throw invalid('holds no PEM certificate (-----BEGIN CERTIFICATE-----)')
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block)
    } catch (error) {
      throw invalid(`has an unreadable certificate (#${i + 1}): ${(error as Error).message}`)
    }
  }
  return bytes
}

/** A target's broker as the MQTT client takes it: the password read from its file (first line), the CA from its. */
export async function readBrokerConfig(broker: TargetBroker): Promise<BrokerConfig> {
  let password: string | undefined
  if (broker.passwordFile !== undefined) {
    try {
      password = (await readFile(broker.passwordFile, 'utf8')).split(/\r?\n/)[0]!
    } catch (error) {
      throw new R1Error(`Cannot read the password file of the broker ${broker.name ?? broker.url} (${broker.passwordFile}): ${(error as Error).message}`, ExitCode.USAGE, {
        code: 'BROKER_PASSWORD_UNREADABLE',
        hint: "Fix the broker's `password_file` in config.yaml (relative to config.yaml).",
      })
    }
  }
  if (broker.passwordEnv !== undefined) {
    password = process.env[broker.passwordEnv]
    if (!password) {
      throw new R1Error(`The password of the broker ${broker.name ?? broker.url} is read from $${broker.passwordEnv}, which is not set.`, ExitCode.USAGE, {
        code: 'BROKER_PASSWORD_UNSET',
        hint: `Set ${broker.passwordEnv} (in CI, from the pipeline's secrets), or use \`password_file\` in config.yaml.`,
      })
    }
  }
  return {
    url: broker.url,
    ...(broker.user === undefined ? {} : {user: broker.user}),
    ...(password === undefined ? {} : {password}),
    ...(broker.ca === undefined ? {} : {ca: await readCa(broker.ca)}),
    ...(broker.root === undefined ? {} : {root: broker.root}),
  }
}

/** Connects with a given identity (tests, benches, embedded use). */
export function sessionConnector(identity: Identity, options: ConnectorOptions = {}): Connect {
  const targetCas = new Map<string, Promise<Buffer>>()
  const brokers = new Map<TargetBroker, Promise<BrokerConfig>>()
  return async (target: Target, signal?: AbortSignal) => {
    if (target.broker && !brokers.has(target.broker)) brokers.set(target.broker, readBrokerConfig(target.broker))
    const broker = target.broker ? await brokers.get(target.broker)! : undefined
    // --ca applies to every target; a target's own `ca` (config.yaml) to that one
    let ca = options.ca
    if (target.ca && !options.ca) {
      if (!targetCas.has(target.ca)) targetCas.set(target.ca, readCa(target.ca))
      ca = await targetCas.get(target.ca)!
    }
    // through a broker, the first command greets the node (connecting costs no round trip of its own)
    const session = await Session.connect({url: target.url, nodeAddress: target.address, identity, connectTimeoutMs: options.connectTimeoutMs, greetWithFirstCommand: true, ...(ca ? {ca} : {}), ...(broker ? {broker} : {})})
    if (signal?.aborted) {
      await session.close()
      throw signal.reason
    }
    return new SessionLink(session, options.requestTimeoutMs ?? Math.max(30_000, options.connectTimeoutMs ?? 0), identity.address)
  }
}

class SessionLink implements NodeLink {
  private watching?: Promise<void>

  constructor(
    private readonly session: Session,
    private readonly timeoutMs: number,
    readonly sender: string,
  ) {}

  get address(): string {
    return this.session.address
  }

  get alias(): string {
    return this.session.alias || this.session.address
  }

  get features(): readonly string[] {
    return this.session.nodeFeatures
  }

  onEvent(listener: Parameters<NodeLink['onEvent']>[0]): () => void {
    return this.session.onEvent(listener)
  }

  onLost(listener: (error: Error) => void): () => void {
    return this.session.onLost(listener)
  }

  /** Resolves once the node accepted the command (R1_REPLY); a rejection throws (exit 4). */
  async send<A extends Action>(action: A, payload: PayloadOf<A>, options: {encrypted?: boolean; confirmWithinMs?: number} = {}): Promise<string> {
    const {hash} = await this.session.send(action, payload, {timeoutMs: this.timeoutMs, ...options})
    return hash
  }

  request<A extends QueryAction>(action: A, payload: PayloadOf<A>, options: {encrypted?: boolean} = {}): Promise<ResultOf<A>> {
    return this.session.request(action, payload, {timeoutMs: this.timeoutMs, ...options})
  }

  /**
   * Makes sure the node's notifications reach this connection (an instance's exception carries no command
   * hash, and deploy must see it to fail fast), and with `heartbeats` its heartbeats too (a rollout's soak
   * watches both; a plain deploy is not sent a heartbeat per node it would not read). A node whose hello
   * offers PIPELINE_FAILURES already sends the failures of the pipelines this session commands: no
   * subscription (and no R1_UNSUBSCRIBE at the end) unless heartbeats are wanted. Call it once the session
   * has heard the hello (after a first command), or it subscribes.
   */
  watchEvents(options: {heartbeats?: boolean} = {}): Promise<void> {
    if (!options.heartbeats && this.session.nodeFeatures.includes(FEATURE_PIPELINE_FAILURES)) return Promise.resolve()
    this.watching ??= this.session.request('R1_SUBSCRIBE', {FILTER: {TYPES: options.heartbeats ? ['NOTIFICATION', 'HEARTBEAT'] : ['NOTIFICATION']}}, {timeoutMs: this.timeoutMs}).then(() => undefined)
    return this.watching
  }

  /** R1_STATE, checked by the session against the protocol's schema: a node that reports nonsense is an error, not a plan. */
  state(query: Omit<StateQuery, 'name'> = {}): Promise<StateResult> {
    return this.session.state(query, {timeoutMs: this.timeoutMs})
  }

  heartbeat(): Promise<HeartbeatResult> {
    return this.session.heartbeat({timeoutMs: this.timeoutMs})
  }

  missingBundles(hashes: string[]): Promise<string[]> {
    return this.session.missingBundles(hashes, {timeoutMs: this.timeoutMs})
  }

  /** Chunked upload; each chunk must be acknowledged within the request timeout, so a stall is an error (exit 5). */
  putBundle(hash: string, bytes: Uint8Array): Promise<void> {
    return this.session.putBundle(hash, bytes, {timeoutMs: this.timeoutMs})
  }

  close(): Promise<void> {
    return this.session.close()
  }
}
