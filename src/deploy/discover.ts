import {ExitCode, R1Error} from '../errors.js'
import {didYouMean} from '../manifest/diagnostics.js'
import {decodePublicHeartbeat} from '../protocol/broker-frames.js'
import type {Tags} from '../protocol/tags.js'
import {cliKeyPath, type Identity, isAddress, normalizeAddress, requireIdentity} from '../protocol/identity.js'
import {parseTags} from '../protocol/tags.js'
import {BrokerHub} from '../session/broker-link.js'
import {type BrokerConfig, checkBrokerUrl} from '../transport/mqtt.js'
import {readBrokerConfig} from './link.js'
import type {Target, TargetBroker, TargetSelection} from './targets.js'

/**
 * Targets on a broker (`--broker <url|name>`): the nodes named with `--address`, or, with `--all` (and
 * by default for read-only commands), every node heard on the broker: each node publishes its signed
 * public heartbeat on `<root>/ctrl` every heartbeat period, so listening that long hears them all.
 */

export interface BrokerSelection extends TargetSelection {
  broker?: string
  /** Seconds to listen for heartbeats (default 11: one default heartbeat period and a margin). */
  discover?: number
}

export interface DiscoveredNode {
  address: string
  alias: string
  version: string | null
  tags: Tags
  /** When its last heartbeat was heard (ms since the epoch). */
  heardAt: number
}

const DEFAULT_DISCOVER_SECONDS = 11

/** The broker `--broker` names: a URL (ad hoc, no credentials) or a name under `brokers` of config.yaml. */
export function brokerOfFlag(value: string, configured: Record<string, TargetBroker>): TargetBroker {
  if (/^[a-z]+:\/\//i.test(value)) {
    checkBrokerUrl(value, '--broker')
    return {url: value}
  }
  const known = Object.keys(configured)
  if (!Object.hasOwn(configured, value)) {
    const guess = didYouMean(value, known)
    throw new R1Error(`Unknown broker "${value}".${guess ? ` ${guess[0]!.toUpperCase()}${guess.slice(1)}` : ''}`, ExitCode.USAGE, {
      code: 'UNKNOWN_BROKER',
      hint: known.length > 0 ? `Brokers of config.yaml: ${known.join(', ')}; or pass a URL (mqtt://host:1883).` : 'Define it under `brokers:` in config.yaml, or pass a URL (mqtt://host:1883).',
    })
  }
  return configured[value]!
}

/** Every node heard on the broker within `listenMs`, newest heartbeat per address; those matching every tag when given. */
export async function discoverNodes(config: BrokerConfig, identity: Identity, options: {listenMs: number; connectTimeoutMs: number; tags?: Tags; signal?: AbortSignal}): Promise<DiscoveredNode[]> {
  const hub = await BrokerHub.acquire(config, identity, options.connectTimeoutMs)
  const heard = new Map<string, DiscoveredNode>()
  try {
    const stop = await hub.onHeartbeat((text) => {
      const heartbeat = decodePublicHeartbeat(text)
      if (!heartbeat) return
      heard.set(heartbeat.EE_ADDR, {address: heartbeat.EE_ADDR, alias: heartbeat.EE_ALIAS, version: heartbeat.VERSION, tags: heartbeat.R1_TAGS ?? {}, heardAt: Date.now()})
    })
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.listenMs)
      options.signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), {once: true})
    })
    stop()
  } finally {
    hub.release()
  }
  const wanted = Object.entries(options.tags ?? {})
  return [...heard.values()].filter((node) => wanted.every(([k, v]) => node.tags[k] === v)).sort((a, b) => a.alias.localeCompare(b.alias) || a.address.localeCompare(b.address))
}

/**
 * The targets of `--broker`: `--address`es on it, or the nodes heard on it (`--all`, or no selection
 * for read-only commands). Usage errors (exit 2) name the flag to fix.
 */
export async function brokerTargets(selection: BrokerSelection, configured: Record<string, TargetBroker>, options: {connectTimeoutMs: number; signal?: AbortSignal}): Promise<Target[]> {
  const broker = brokerOfFlag(selection.broker!, configured)
  const usage = (message: string, hint: string) => new R1Error(message, ExitCode.USAGE, {code: 'BAD_TARGET', hint})
  if ((selection.target?.length ?? 0) > 0 || (selection.node?.length ?? 0) > 0) throw usage('--broker does not go with --target or --node.', 'With --broker, name nodes by --address 0xai_…, or take every node heard on it with --all.')
  const addresses = selection.address ?? []
  const tags = parseTags(selection.tag ?? [])
  const named = (address: string, name: string): Target => ({name, url: broker.url, address: normalizeAddress(address), broker})
  if (addresses.length > 0) {
    if (selection.all) throw usage('--all and --address do not go together.', 'Either name nodes with --address, or take every node heard on the broker with --all.')
    for (const address of addresses) if (!isAddress(address)) throw usage(`--address "${address}" is not a node address.`, 'A node address looks like 0xai_A2pP… (shown by `r1 node start`).')
    return [...new Set(addresses.map(normalizeAddress))].map((address) => named(address, address.slice(0, 12)))
  }
  if (!selection.all && !selection.everyTargetByDefault) throw usage('--broker needs --address <0xai_…> (repeatable) or --all (every node heard on the broker).', `e.g. --broker ${selection.broker} --all`)
  const identity = await requireIdentity(cliKeyPath())
  const found = await discoverNodes(await readBrokerConfig(broker), identity, {listenMs: (selection.discover ?? DEFAULT_DISCOVER_SECONDS) * 1000, connectTimeoutMs: options.connectTimeoutMs, tags, signal: options.signal})
  const excluded = new Set(selection.exclude ?? [])
  const aliases = new Map<string, number>()
  for (const node of found) aliases.set(node.alias, (aliases.get(node.alias) ?? 0) + 1)
  const targets = found.map((node) => named(node.address, (aliases.get(node.alias) ?? 0) > 1 ? `${node.alias}@${node.address.slice(5, 11)}` : node.alias)).filter((t) => !excluded.has(t.name) && !excluded.has(t.address))
  if (targets.length === 0) {
    const filter = Object.keys(tags).length > 0 ? ` with ${selection.tag!.join(', ')}` : ''
    throw new R1Error(`No node${filter} was heard on the broker ${broker.url} within ${selection.discover ?? DEFAULT_DISCOVER_SECONDS} s.`, ExitCode.UNREACHABLE, {
      code: 'NO_NODE_HEARD',
      hint: 'Nodes join a broker with `r1 node start --broker <url>` (same topic root); listen longer with --discover <seconds> if their heartbeat period is longer.',
    })
  }
  return targets
}
