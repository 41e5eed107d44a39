import {isIP} from 'node:net'
import {connect as tlsConnect} from 'node:tls'
import type {R1Error} from '../errors.js'
import {readBrokerConfig} from '../deploy/link.js'
import type {Target, TargetBroker} from '../deploy/targets.js'
import {generateIdentity, type Identity} from '../protocol/identity.js'
import {Session} from '../session/index.js'
import type {CheckResult} from './checks.js'

/**
 * The checks of one node, in this order: `reachable` (a signed hello over the session, as every
 * command connects: at its URL, or through its broker), `tls` (wss:// only), `address` (the key that signs is the one config.yaml
 * names), `clock` (skew from the hello's stamp) and `allow-list` (the node answers a command of ours).
 */

export interface NodeCheckOptions {
  /** The CLI key: the allow-list check signs an R1_STATE with it (skipped without one). */
  identity?: Identity
  /** CA certificate(s) to trust (--ca, or the target's `ca`). */
  ca?: Buffer
  connectTimeoutMs: number
  /** For the R1_STATE of the allow-list check (default 10 s). */
  requestTimeoutMs?: number
  /** A node refuses commands whose TIME is further than this from its clock (the node's default: 5 min). */
  skewLimitMs?: number
  /** Skew above this warns (default 60 s). */
  skewWarnMs?: number
  /** A certificate expiring within this many days warns (default 14). */
  certificateWarnDays?: number
}

const DAY_MS = 86_400_000
const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'TIMEOUT'])

export async function checkNode(target: Target, options: NodeCheckOptions): Promise<CheckResult[]> {
  const of = (check: Omit<CheckResult, 'target'>): CheckResult => ({...check, target: target.name})
  const identity = options.identity ?? generateIdentity() // without a key nothing is sent: the hello needs none
  const reached = target.broker ? await reachThroughBroker(target, target.broker, identity, options) : await reachDirectly(target, identity, options)
  const {session} = reached
  const reachable = of(reached.reachable)
  const tlsResult = of(reached.tls)
  if (!session) {
    const unreachable = (id: CheckResult['id']) => of({id, status: 'skip', message: 'not checked: the node is not reachable'})
    return [reachable, tlsResult, unreachable('address'), unreachable('clock'), unreachable('allow-list')]
  }
  try {
    const address = addressCheck(target, session.address)
    const clock = clockCheck(session.nodeClockOffsetMs, options.skewLimitMs ?? 5 * 60_000, options.skewWarnMs ?? 60_000)
    const allowed =
      address.status !== 'ok'
        ? {id: 'allow-list' as const, status: 'skip' as const, message: 'not checked: another node answers at this URL'}
        : options.identity
          ? await allowListCheck(session, options.identity.address, options.requestTimeoutMs ?? 10_000)
          : {id: 'allow-list' as const, status: 'skip' as const, message: 'not checked: no CLI key to sign a command with'}
    return [reachable, tlsResult, of(address), of(clock), of(allowed)]
  } finally {
    await session.close()
  }
}

interface Reached {
  session?: Session
  reachable: Omit<CheckResult, 'target'>
  tls: Omit<CheckResult, 'target'>
}

/** A signed hello at the node's URL, its address learned (not pinned); past a certificate that is the only problem. */
async function reachDirectly(target: Target, identity: Identity, options: NodeCheckOptions): Promise<Reached> {
  const url = new URL(target.url)
  const tls = url.protocol === 'wss:' ? tlsCheck(await probeTls(url, options).catch((error: Error & {code?: string}) => error), options.certificateWarnDays ?? 14) : undefined
  const connect = (insecure: boolean) => Session.connect({url: target.url, nodeAddress: undefined, identity, connectTimeoutMs: options.connectTimeoutMs, ...(options.ca ? {ca: options.ca} : {}), insecure})
  const tlsResult = tls ?? {id: 'tls' as const, status: 'skip' as const, message: `${url.protocol}// carries no TLS`}
  const started = Date.now()
  try {
    const session = await connect(false)
    return {session, tls: tlsResult, reachable: {id: 'reachable', status: 'ok', message: `${target.url} answered with a signed hello in ${Date.now() - started} ms`, details: {url: target.url, ms: Date.now() - started}}}
  } catch (error) {
    const failed = error as R1Error
    const reachable: Omit<CheckResult, 'target'> = {id: 'reachable', status: 'fail', message: failed.message, hint: failed.hint, details: {url: target.url, code: failed.code}}
    // The node's signature is checked on every frame whatever the certificate: look past a bad one for the other checks.
    if (tls?.status === 'fail' && tls.details?.certificate !== undefined) {
      const session = await connect(true).catch(() => undefined)
      if (session) return {session, tls: tlsResult, reachable: {...reachable, message: `${target.url} answers, but not over TLS a client checks: ${tls.message}`, hint: tls.hint}}
    }
    return {tls: tlsResult, reachable}
  }
}

/**
 * A signed hello through the target's broker. A session there is addressed to the node, so its address
 * is pinned: another key answering cannot happen, only no answer. The node's own endpoint is not used (no TLS of its own to check).
 */
async function reachThroughBroker(target: Target, broker: TargetBroker, identity: Identity, options: NodeCheckOptions): Promise<Reached> {
  const tls = {id: 'tls' as const, status: 'skip' as const, message: `reached through the broker ${broker.url}: no endpoint of its own`}
  const details = {broker: broker.url, address: target.address}
  const started = Date.now()
  try {
    const session = await Session.connect({url: broker.url, nodeAddress: target.address, identity, connectTimeoutMs: options.connectTimeoutMs, broker: await readBrokerConfig(broker)})
    return {session, tls, reachable: {id: 'reachable', status: 'ok', message: `${target.address} answered through ${broker.url} with a signed hello in ${Date.now() - started} ms`, details: {...details, ms: Date.now() - started}}}
  } catch (error) {
    const failed = error as R1Error
    return {tls, reachable: {id: 'reachable', status: 'fail', message: failed.message, hint: failed.hint, details: {...details, code: failed.code}}}
  }
}

interface TlsProbe {
  authorized: boolean
  authorizationError?: string
  validFrom: number
  validTo: number
  subject: string
  issuer: string
  host: string
}

/** A TLS handshake that accepts any certificate, to read it and whether it would be trusted. */
function probeTls(url: URL, options: NodeCheckOptions): Promise<TlsProbe> {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({host, port: Number(url.port || 443), ...(isIP(host) ? {} : {servername: host}), ...(options.ca ? {ca: options.ca} : {}), rejectUnauthorized: false})
    socket.setTimeout(options.connectTimeoutMs, () => socket.destroy(Object.assign(new Error(`no TLS handshake within ${options.connectTimeoutMs} ms`), {code: 'TIMEOUT'})))
    socket.once('error', reject)
    socket.once('secureConnect', () => {
      const certificate = socket.getPeerCertificate()
      const error = socket.authorizationError as unknown
      resolve({
        authorized: socket.authorized,
        ...(error ? {authorizationError: typeof error === 'string' ? error : String((error as Error).message ?? error)} : {}),
        validFrom: Date.parse(certificate.valid_from),
        validTo: Date.parse(certificate.valid_to),
        subject: [certificate.subject?.CN ?? ''].flat()[0] ?? '',
        issuer: [certificate.issuer?.CN ?? ''].flat()[0] ?? '',
        host,
      })
      socket.end()
    })
  })
}

/** `tls`: the certificate is in its validity period, trusted for the host, and not about to expire. */
export function tlsCheck(probe: TlsProbe | (Error & {code?: string}), warnDays: number, now = Date.now()): Omit<CheckResult, 'target'> {
  if (probe instanceof Error) {
    if (NETWORK_ERRORS.has(probe.code ?? '')) return {id: 'tls', status: 'skip', message: `not checked: no connection (${probe.message})`}
    return {id: 'tls', status: 'fail', message: `TLS handshake failed: ${probe.message}`, hint: 'Is the node serving wss:// on this port? `r1 node start --tls-cert <file> --tls-key <file>`.'}
  }
  const certificate = {subject: probe.subject, issuer: probe.issuer, validFrom: new Date(probe.validFrom).toISOString(), validTo: new Date(probe.validTo).toISOString()}
  const daysLeft = Math.floor((probe.validTo - now) / DAY_MS)
  const renew = "Issue a new certificate for the node and restart it with it (`r1 node start --tls-cert … --tls-key …`); for a self-signed one, update the targets' `ca` file too."
  if (now > probe.validTo) return {id: 'tls', status: 'fail', message: `the certificate expired on ${certificate.validTo}`, hint: renew, details: {certificate, daysLeft}}
  if (now < probe.validFrom) return {id: 'tls', status: 'fail', message: `the certificate is not valid before ${certificate.validFrom}`, hint: 'Check the clock of the machine that issued it, or wait until then.', details: {certificate, daysLeft}}
  if (!probe.authorized) {
    const hostname = /HOSTNAME|ALTNAME|IP: .* is not in the cert/i.test(probe.authorizationError ?? '')
    return {
      id: 'tls',
      status: 'fail',
      message: `the certificate is not trusted for ${probe.host}: ${probe.authorizationError ?? 'unknown reason'}`,
      hint: hostname
        ? `Issue the node a certificate whose subjectAltName names ${probe.host}, or reach it by a name the certificate has.`
        : "Trust it: set `ca: <file>` on the target in config.yaml (or pass --ca <file>) with the node's certificate or its CA.",
      details: {certificate, daysLeft, error: probe.authorizationError},
    }
  }
  if (probe.validTo - now < warnDays * DAY_MS) return {id: 'tls', status: 'warn', message: `the certificate expires in ${daysLeft} day${daysLeft === 1 ? '' : 's'} (${certificate.validTo})`, hint: renew, details: {certificate, daysLeft}}
  return {id: 'tls', status: 'ok', message: `trusted certificate for ${probe.host}, valid until ${certificate.validTo} (${daysLeft} days)`, details: {certificate, daysLeft}}
}

/** `address`: the key that signs at the URL is the one config.yaml (or --address) names. */
export function addressCheck(target: Target, signer: string): Omit<CheckResult, 'target'> {
  if (signer === target.address) return {id: 'address', status: 'ok', message: `the node signs as ${signer}`, details: {address: signer}}
  const adHoc = target.name === new URL(target.url).host
  return {
    id: 'address',
    status: 'fail',
    message: `the node at ${target.url} signs as ${signer}, not ${target.address}`,
    hint: `If that node was re-keyed on purpose, pin its new address (${adHoc ? '--address' : `\`address:\` of targets.${target.name} in config.yaml`}: ${signer}); otherwise the URL reaches another node: fix it.`,
    details: {expected: target.address, got: signer},
  }
}

/** `clock`: the node's clock against ours, from its hello; beyond the node's limit every command is refused. */
export function clockCheck(offsetMs: number, limitMs: number, warnMs: number): Omit<CheckResult, 'target'> {
  if (!Number.isFinite(offsetMs)) return {id: 'clock', status: 'fail', message: "the node's hello carries no readable time", hint: 'Upgrade the node (`r1 node start` of this version stamps its hello).'}
  const seconds = (ms: number) => `${(Math.abs(ms) / 1000).toFixed(1)} s`
  const side = offsetMs >= 0 ? 'ahead of' : 'behind'
  const details = {offsetMs: Math.round(offsetMs), limitMs, warnMs}
  const sync = 'Sync the clocks of this machine and of the node with NTP (e.g. `timedatectl set-ntp true`, or chrony).'
  if (Math.abs(offsetMs) > limitMs) return {id: 'clock', status: 'fail', message: `the node's clock is ${seconds(offsetMs)} ${side} this machine's: beyond ±${seconds(limitMs)} it refuses every command`, hint: sync, details}
  if (Math.abs(offsetMs) > warnMs) return {id: 'clock', status: 'warn', message: `the node's clock is ${seconds(offsetMs)} ${side} this machine's (commands are refused beyond ±${seconds(limitMs)})`, hint: sync, details}
  return {id: 'clock', status: 'ok', message: `the node's clock is within ${seconds(offsetMs)} of this machine's`, details}
}

/** `allow-list`: the node answers a command signed with our key (R1_STATE), or says why not. */
async function allowListCheck(session: Session, address: string, timeoutMs: number): Promise<Omit<CheckResult, 'target'>> {
  try {
    await session.state({}, {timeoutMs})
    return {id: 'allow-list', status: 'ok', message: `the node accepts commands from ${address}`, details: {address}}
  } catch (error) {
    const failed = error as R1Error
    if (failed.code === 'REJECTED_NOT_ALLOWED') {
      return {id: 'allow-list', status: 'fail', message: `${address} is not on the node's allow-list: it refuses our commands`, hint: `On the node: r1 node allow ${address}`, details: {address, reason: 'NOT_ALLOWED'}}
    }
    const reason = failed.code?.startsWith('REJECTED_') ? failed.code.slice('REJECTED_'.length) : failed.code
    return {id: 'allow-list', status: 'fail', message: `the node did not accept a command from ${address}: ${failed.message}`, hint: reason === 'TIME_SKEW' ? 'Fix the clock first (see the clock check).' : failed.hint, details: {address, reason}}
  }
}
