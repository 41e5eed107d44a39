import type {Identity} from '../protocol/identity.js'
import {type Action, type CommandEnvelope, ENCRYPTED_ONLY_ACTIONS, MAX_FRAME_BYTES, parseTime, PUBLIC_ACTIONS, type RejectionReason} from '../protocol/messages.js'
import {decodeCommand, type DecodedSigned, openEncryptedCommand} from '../protocol/wire.js'
import type {ReplayVerdict} from './replay-cache.js'

/**
 * Admission of one command frame, whatever carried it: size, signature, envelope and payload,
 * destination, skew, allow-list, replay; then, for an encrypted command, decryption with the node's
 * key and the payload checks (strangers get no decryption work). No sockets and no timers: the clock, the allow-list and the
 * replay cache are passed in, so every rule is unit-tested on its own (test/server/admission.test.ts).
 * The rate limit comes first and is per connection: see TokenBucket.
 */
export interface AdmissionContext {
  /** This node's address (EE_DEST must name it). */
  nodeAddress: string
  /** This node's key: opens encrypted commands (without it they are refused as BAD_ENCRYPTION). */
  identity?: Identity
  /** Allowed |TIME - now|. */
  skewMs: number
  now: number
  isAllowed(sender: string): boolean
  /** Records an allowed sender's hash until `expires` (ReplayCache.check). */
  remember(sender: string, hash: string, expires: number): ReplayVerdict
}

export interface Admitted {
  ok: true
  command: CommandEnvelope
  action: Action
  payload: unknown
  hash: string
  sender: string
  /** On the allow-list (and recorded against replay). A stranger is admitted only for a public action. */
  allowed: boolean
  /** It arrived encrypted (EE_IS_ENCRYPTED) and was opened with the node's key. */
  encrypted: boolean
}

export interface Refused {
  ok: false
  reason: RejectionReason
  detail: string
  hash: string | null
  action: string | null
  /** Malformed input: counts toward closing a flooding connection. */
  strike: boolean
}

export function admitCommand(text: string, context: AdmissionContext, verified?: DecodedSigned): Admitted | Refused {
  if (Buffer.byteLength(text) > MAX_FRAME_BYTES) {
    return {ok: false, reason: 'INVALID_MESSAGE', detail: `frame over ${MAX_FRAME_BYTES} bytes; bundles travel in R1_BUNDLE_PUT chunks`, hash: null, action: null, strike: true}
  }
  const decoded = decodeCommand(text, verified)
  if (!decoded.ok) return {ok: false, reason: decoded.reason, detail: decoded.detail, hash: decoded.hash, action: decoded.action, strike: true}
  const {command, hash, sender} = decoded
  const action = decoded.encrypted ? null : decoded.action
  const refuse = (reason: RejectionReason, detail: string): Refused => ({ok: false, reason, detail, hash, action, strike: false})
  if (command.EE_DEST !== context.nodeAddress) return refuse('WRONG_DEST', `EE_DEST ${command.EE_DEST.slice(0, 60)} is not this node (${context.nodeAddress})`)
  const timeMs = parseTime(command.TIME)
  if (!(Math.abs(timeMs - context.now) <= context.skewMs)) {
    const nodeTime = new Date(context.now).toISOString()
    return refuse('TIME_SKEW', `TIME ${command.TIME} is more than ${Math.round(context.skewMs / 1000)} s from the node's clock (${nodeTime}); check the client's clock`)
  }
  const allowed = context.isAllowed(sender)
  if (!allowed) {
    if (!decoded.encrypted && PUBLIC_ACTIONS.has(decoded.action)) return {ok: true, command: decoded.command, action: decoded.action, payload: decoded.payload, hash, sender, allowed: false, encrypted: false}
    return refuse('NOT_ALLOWED', `${sender} is not on this node's allow-list; on the node run: r1 node allow ${sender}`)
  }
  // Kept until its TIME fails the skew check (with a margin for the node's clock moving on).
  const verdict = context.remember(sender, hash, Math.max(timeMs, context.now) + context.skewMs + 1000)
  if (verdict === 'replay') return refuse('REPLAY', `command ${hash} was already received; sign a new one`)
  if (verdict === 'full') return refuse('THROTTLED', `too many commands from ${sender} within ${Math.round(context.skewMs / 1000)} s; retry shortly`)
  if (!decoded.encrypted) {
    if (ENCRYPTED_ONLY_ACTIONS.has(decoded.action)) return refuse('ENCRYPTION_REQUIRED', `${decoded.action} carries secrets and is accepted only encrypted to this node's key (EE_IS_ENCRYPTED); r1 deploy sends it so`)
    return {ok: true, command: decoded.command, action: decoded.action, payload: decoded.payload, hash, sender, allowed: true, encrypted: false}
  }
  if (!context.identity) return refuse('BAD_ENCRYPTION', 'this node cannot open encrypted commands (no key)')
  const opened = openEncryptedCommand(decoded, context.identity)
  if (!opened.ok) return {ok: false, reason: opened.reason, detail: opened.detail, hash, action: opened.action, strike: false}
  return {ok: true, command: opened.command, action: opened.action, payload: opened.payload, hash, sender, allowed: true, encrypted: true}
}

export {TokenBucket} from './token-bucket.js'

/** Counts refused frames; `strike` turns false once more than `closeAfter` fell within `windowMs` (close the connection). */
export class FloodGuard {
  private refusals: number[] = []

  constructor(
    private readonly closeAfter: number,
    private readonly windowMs = 10_000,
  ) {}

  strike(now: number): boolean {
    this.refusals.push(now)
    if (this.refusals.length <= this.closeAfter) return true
    this.refusals = this.refusals.filter((t) => now - t < this.windowMs)
    return this.refusals.length <= this.closeAfter
  }
}

export interface SlotLimits {
  /** Open connections at most. */
  max: number
  /** Slots strangers never hold: unauthenticated connections above `max - reserved` make room by evicting the oldest. */
  reserved: number
  /** Unauthenticated connections per remote IP; above it the IP's oldest is evicted. */
  perIp: number
}

/**
 * Who holds the node's connection slots. A new connection is unauthenticated until it sends a command
 * admitted from an allow-listed sender. When a limit is reached the oldest unauthenticated connection
 * (of that IP, or of all) makes room, so strangers can never lock an allow-listed sender out; only
 * when every slot is held by authenticated connections is a newcomer refused.
 */
export class ConnectionSlots<C> {
  private readonly open = new Map<C, {ip: string; authenticated: boolean}>()

  constructor(private readonly limits: SlotLimits) {}

  get size(): number {
    return this.open.size
  }

  /** For a connection from `ip`: the connections to evict to make room, or refused. */
  admit(ip: string): {ok: true; evict: C[]} | {ok: false; detail: string} {
    const evict = new Set<C>()
    const unauthenticated = [...this.open].filter(([, s]) => !s.authenticated) // Map order: oldest first
    const fromIp = unauthenticated.filter(([, s]) => s.ip === ip)
    for (let i = 0; fromIp.length - i >= this.limits.perIp && i < fromIp.length; i++) evict.add(fromIp[i]![0])
    const softCap = Math.max(1, this.limits.max - this.limits.reserved)
    const others = unauthenticated.filter(([c]) => !evict.has(c))
    for (let i = 0; others.length - i >= softCap && i < others.length; i++) evict.add(others[i]![0])
    const left = others.filter(([c]) => !evict.has(c))
    if (this.open.size - evict.size >= this.limits.max) {
      if (left.length === 0) return {ok: false, detail: 'every connection slot of this node is in use by allow-listed senders; retry later'}
      evict.add(left[0]![0])
    }
    return {ok: true, evict: [...evict]}
  }

  add(connection: C, ip: string): void {
    this.open.set(connection, {ip, authenticated: false})
  }

  authenticate(connection: C): void {
    const slot = this.open.get(connection)
    if (slot) slot.authenticated = true
  }

  isAuthenticated(connection: C): boolean {
    return this.open.get(connection)?.authenticated ?? false
  }

  remove(connection: C): void {
    this.open.delete(connection)
  }
}

export interface PendingLimits {
  /** Sockets not yet upgraded to a WebSocket, per remote address (IPv4, or IPv6 /64). */
  perIp: number
  /** Sockets not yet upgraded, in all. */
  max: number
}

/**
 * TCP/TLS sockets before their WebSocket upgrade (counted from the server's 'connection' event, so
 * partial headers and slow TLS handshakes hold a place too). At a limit the oldest of that address
 * (or of all) is dropped, never the newcomer: a flood cannot keep an allow-listed client from
 * reaching the upgrade, after which ConnectionSlots and the auth grace take over.
 */
export class PendingSockets<S> {
  private readonly pending = new Map<S, string>() // insertion order: oldest first
  private readonly perIpCount = new Map<string, number>()

  constructor(private readonly limits: PendingLimits) {}

  get size(): number {
    return this.pending.size
  }

  countFor(ip: string): number {
    return this.perIpCount.get(ip) ?? 0
  }

  /** Counts a new socket from `ip`; returns the sockets to drop to make room for it. */
  add(socket: S, ip: string): S[] {
    const drop: S[] = []
    if (this.countFor(ip) >= this.limits.perIp) {
      for (const [s, from] of this.pending) {
        if (from !== ip) continue
        drop.push(s)
        this.release(s)
        if (this.countFor(ip) < this.limits.perIp) break
      }
    }
    for (const [s] of this.pending) {
      if (this.pending.size < this.limits.max) break
      drop.push(s)
      this.release(s)
    }
    this.pending.set(socket, ip)
    this.perIpCount.set(ip, this.countFor(ip) + 1)
    return drop
  }

  /** The socket was upgraded or closed; true when it was counted. */
  release(socket: S): boolean {
    const ip = this.pending.get(socket)
    if (ip === undefined) return false
    this.pending.delete(socket)
    const count = this.countFor(ip) - 1
    if (count > 0) this.perIpCount.set(ip, count)
    else this.perIpCount.delete(ip)
    return true
  }
}

/** The per-address key of a remote IP: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64 (one host usually holds a whole /64). */
export function ipKey(address: string | undefined): string {
  if (!address) return 'unknown'
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  if (mapped) return mapped[1]!
  if (!address.includes(':')) return address
  const bare = address.split('%')[0]!.toLowerCase()
  const [head = '', tail = ''] = bare.split('::', 2) as [string, string?]
  const headParts = head ? head.split(':') : []
  const tailParts = bare.includes('::') ? (tail ? tail.split(':') : []) : []
  const parts = bare.includes('::') ? [...headParts, ...Array(Math.max(0, 8 - headParts.length - tailParts.length)).fill('0'), ...tailParts] : headParts
  return `${parts.slice(0, 4).map((p) => (p ? p.replace(/^0+(?=.)/, '') : '0')).join(':')}::/64`
}
