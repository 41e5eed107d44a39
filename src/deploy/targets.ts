import {ExitCode, R1Error} from '../errors.js'
import {closest} from '../manifest/diagnostics.js'
import {isAddress, normalizeAddress} from '../protocol/identity.js'

/** A broker a target is reached through (`brokers.<name>` of config.yaml, or an ad hoc `--broker <url>`); files resolved against the project folder. */
export interface TargetBroker {
  name?: string
  url: string
  user?: string
  passwordFile?: string
  ca?: string
  root?: string
}

/** One node a command talks to: a named target from `config.yaml`, an ad hoc `--node`, or a node on a broker. */
export interface Target {
  /** The target's name in `config.yaml`, or the URL's host:port for an ad hoc node (its alias for a node found on a broker). */
  name: string
  /** The node's URL; for a node behind a broker, the broker's. */
  url: string
  /** Reached through this broker rather than at `url`. */
  broker?: TargetBroker
  /** The node address the session must find at `url` (`0xai_…`). */
  address: string
  /** PEM file of the CA to trust for this wss:// node (a target's `ca` in config.yaml). */
  ca?: string
}

/** `targets:` of `config.yaml`: name → {url, address, ca?} or {broker, address} (files resolved against the project folder). */
export type TargetMap = Record<string, {url?: string; broker?: TargetBroker; address: string; ca?: string}>

/** The target flags every deploy/manage command takes. */
export interface TargetSelection {
  target?: string[]
  node?: string[]
  address?: string[]
  all?: boolean
  exclude?: string[]
  /** Read-only commands (status, logs, pipelines ls): no target flag means every configured target. */
  everyTargetByDefault?: boolean
}

/**
 * Resolves the target flags to the nodes to talk to, in a stable order (named targets as given,
 * then ad hoc nodes). Throws a usage error (exit 2) that names the flag to fix.
 */
export function resolveTargets(configured: TargetMap | undefined, selection: TargetSelection): Target[] {
  const known = configured ?? {}
  const names = Object.keys(known)
  const wanted = selection.target ?? []
  const nodes = selection.node ?? []
  const addresses = selection.address ?? []
  const exclude = selection.exclude ?? []

  if (addresses.length > 0 && nodes.length === 0) {
    throw usage('--address needs --node <url>: it is the address expected at that URL.', 'Pass --node wss://host:port --address 0xai_…')
  }
  if (nodes.length !== addresses.length) {
    throw usage(
      `Every --node needs its --address (got ${nodes.length} --node and ${addresses.length} --address).`,
      'The address is how r1 checks it is talking to the right node: copy it from `r1 node start` output.',
    )
  }
  if (selection.all && wanted.length > 0) throw usage('--all and --target do not go together.', 'Use --all with --exclude <name> to leave some out.')

  for (const name of [...wanted, ...exclude]) {
    if (!Object.hasOwn(known, name)) throw unknownTarget(name, names)
  }

  let chosen: string[]
  if (selection.all) chosen = names
  else if (wanted.length > 0) chosen = [...new Set(wanted)]
  else if (nodes.length > 0) chosen = []
  else if (names.length === 1 || (names.length > 1 && selection.everyTargetByDefault)) chosen = names
  else if (names.length === 0) {
    throw usage('No target to talk to: config.yaml has no `targets`, and no --node was given.', 'Add a target under `targets:` in config.yaml, or pass --node <url> --address <0xai_…>.')
  } else {
    throw usage(`Several targets are configured (${names.join(', ')}): choose with --target <name> or --all.`, `e.g. --target ${names[0]}`)
  }

  const targets: Target[] = chosen.filter((name) => !exclude.includes(name)).map((name) => checked(configuredTarget(name, known[name]!), `targets.${name} in config.yaml`))
  nodes.forEach((url, i) => {
    targets.push(checked({name: adHocName(url), url, address: addresses[i]}, `--node ${url}`))
  })

  const seen = new Map<string, string>()
  for (const t of targets) {
    const key = `${t.url}|${t.address}`
    if (seen.has(key)) throw usage(`Targets ${seen.get(key)} and ${t.name} are the same node (${t.url}).`, 'Name each node once.')
    seen.set(key, t.name)
  }
  if (targets.length === 0) throw usage('Every target was excluded: nothing to do.', 'Drop an --exclude, or choose other targets.')
  return targets
}

function configuredTarget(name: string, target: TargetMap[string]): Target {
  const {broker, url, ...rest} = target
  if (broker) return {name, ...rest, url: broker.url, broker}
  return {name, ...rest, url: url ?? ''}
}

function checked(target: Target, where: string): Target {
  if (target.broker) return checkedAddress(target, where)
  let url: URL
  try {
    url = new URL(target.url)
  } catch {
    throw usage(`${where}: "${target.url}" is not a URL.`, 'A node URL looks like ws://127.0.0.1:7443 or wss://edge.example:7443')
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw usage(`${where}: "${target.url}" must use ws:// or wss://.`, 'A node URL looks like ws://127.0.0.1:7443 or wss://edge.example:7443')
  }
  return checkedAddress(target, where)
}

function checkedAddress(target: Target, where: string): Target {
  if (typeof target.address !== 'string' || !isAddress(target.address)) {
    throw usage(`${where}: "${target.address}" is not a node address.`, 'A node address looks like 0xai_A2pP… (shown by `r1 node start`).')
  }
  return {...target, address: normalizeAddress(target.address)}
}

function adHocName(url: string): string {
  try {
    return new URL(url).host || url
  } catch {
    return url
  }
}

function unknownTarget(name: string, names: string[]): R1Error {
  const guess = closest(name, names)
  const list = names.length > 0 ? `Known targets: ${names.join(', ')}.` : 'config.yaml defines no targets.'
  return new R1Error(`Unknown target "${name}".${guess ? ` Did you mean "${guess}"?` : ''}`, ExitCode.USAGE, {
    code: 'UNKNOWN_TARGET',
    hint: `${list} Targets live under \`targets:\` in config.yaml.`,
    details: {target: name, known: names, suggestion: guess},
  })
}

function usage(message: string, hint: string): R1Error {
  return new R1Error(message, ExitCode.USAGE, {code: 'BAD_TARGET', hint})
}
