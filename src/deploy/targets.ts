import {ExitCode, R1Error} from '../errors.js'
import {closest} from '../manifest/diagnostics.js'
import {environmentTargets, hasTags, knownTags} from '../manifest/environments.js'
import type {Environment} from '../manifest/schema.js'
import {isAddress, normalizeAddress} from '../protocol/identity.js'
import {parseTags, type Tags} from '../protocol/tags.js'

/** A broker a target is reached through (`brokers.<name>` of config.yaml, or an ad hoc `--broker <url>`); files resolved against the project folder. */
export interface TargetBroker {
  name?: string
  url: string
  user?: string
  passwordFile?: string
  /** Environment variable holding the password (`password_env`). */
  passwordEnv?: string
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
  /** Its labels in config.yaml (`tags`). */
  tags?: Tags
}

/** `targets:` of `config.yaml`: name → {url, address, ca?, tags?} or {broker, address, tags?} (files resolved against the project folder). */
export type TargetMap = Record<string, {url?: string; broker?: TargetBroker; address: string; ca?: string; tags?: Tags}>

/** `environments:` of `config.yaml`: what target selection needs of them. */
export type EnvironmentMap = Record<string, Pick<Environment, 'targets' | 'tags'>>

/** The target flags every deploy/manage command takes. */
export interface TargetSelection {
  target?: string[]
  node?: string[]
  address?: string[]
  all?: boolean
  exclude?: string[]
  /** `name=value` labels every chosen target must carry (config.yaml `tags`). */
  tag?: string[]
  /** An environment of config.yaml: its targets are the ones to choose from. */
  env?: string
  /** Read-only commands (status, logs, pipelines ls): no target flag means every configured target. */
  everyTargetByDefault?: boolean
}

/**
 * Resolves the target flags to the nodes to talk to, in a stable order (named targets as given,
 * then ad hoc nodes). `--env` narrows the targets to choose from to the environment's, and `--tag`
 * keeps those that carry every tag given. Throws a usage error (exit 2) that names the flag to fix.
 */
export function resolveTargets(configured: TargetMap | undefined, selection: TargetSelection, environments: EnvironmentMap = {}): Target[] {
  const known = configured ?? {}
  const tags = parseTags(selection.tag ?? [])
  const filtered = selection.env !== undefined || Object.keys(tags).length > 0
  const pool = selection.env === undefined ? Object.keys(known) : environmentOf(selection.env, environments, known)
  const names = pool.filter((name) => hasTags(known[name]!.tags, tags))
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
  if (filtered && nodes.length > 0) throw usage('--node does not go with --env or --tag: an ad hoc node has no environment or tags.', 'Name the node under `targets:` in config.yaml (with its `tags`), or drop --env/--tag.')

  for (const name of [...wanted, ...exclude]) {
    if (!Object.hasOwn(known, name)) throw unknownTarget(name, Object.keys(known))
  }
  if (filtered && names.length === 0) throw noMatch(selection.env, tags, known)
  const outside = wanted.filter((name) => !names.includes(name))
  if (outside.length > 0) {
    throw usage(`Target${outside.length > 1 ? 's' : ''} ${outside.join(', ')} ${outside.length > 1 ? 'are' : 'is'} not among ${describeFilter(selection.env, tags)} (${names.join(', ')}).`, 'Drop --target to take them all, or name one of those.')
  }

  let chosen: string[]
  if (selection.all || (filtered && wanted.length === 0)) chosen = names
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

function environmentOf(name: string, environments: EnvironmentMap, known: TargetMap): string[] {
  if (!Object.hasOwn(environments, name)) {
    const names = Object.keys(environments)
    const guess = closest(name, names)
    throw new R1Error(`Unknown environment "${name}".${guess ? ` Did you mean "${guess}"?` : ''}`, ExitCode.USAGE, {
      code: 'UNKNOWN_ENVIRONMENT',
      hint: `${names.length > 0 ? `Environments: ${names.join(', ')}.` : 'config.yaml defines no environments.'} They live under \`environments:\` in config.yaml.`,
      details: {environment: name, known: names, suggestion: guess},
    })
  }
  return environmentTargets(environments[name]!, known)
}

function describeFilter(env: string | undefined, tags: Tags): string {
  const pairs = Object.entries(tags).map(([k, v]) => `${k}=${v}`)
  return [env === undefined ? 'the targets' : `the targets of environment "${env}"`, pairs.length > 0 ? `with tag${pairs.length > 1 ? 's' : ''} ${pairs.join(', ')}` : ''].filter(Boolean).join(' ')
}

function noMatch(env: string | undefined, tags: Tags, known: TargetMap): R1Error {
  const inUse = knownTags(known)
  return new R1Error(`No target to talk to: none of ${describeFilter(env, tags)}.`, ExitCode.USAGE, {
    code: 'NO_TARGET_MATCH',
    hint: inUse.length > 0 ? `Tags in config.yaml: ${inUse.join(', ')}.` : 'No target in config.yaml has `tags:`.',
    details: {environment: env, tags, known: inUse},
  })
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
  // a string of its own, one byte a character: one read from a config.yaml holding any non-ASCII character
  // is stored two bytes a character, and so is every frame text built with it (a fleet command keeps one per node)
  return {...target, address: Buffer.from(normalizeAddress(target.address), 'latin1').toString('latin1')}
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
