import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {generateIdentity} from '../../src/protocol/identity.js'
import {formatTime, type UnsignedCommand} from '../../src/protocol/messages.js'
import {decodeSigned, encodeCommand, encodeEncryptedCommand} from '../../src/protocol/wire.js'
import {admitCommand, type AdmissionContext, ConnectionSlots, FloodGuard, ipKey, PendingSockets, TokenBucket} from '../../src/runtime/admission.js'
import {ReplayCache} from '../../src/runtime/replay-cache.js'

const node = generateIdentity()
const friend = generateIdentity()
const stranger = generateIdentity()
const NOW = Date.parse('2026-01-01T12:00:00Z')

function frame(action: UnsignedCommand['ACTION'], payload: unknown, signer = friend, extra: Partial<UnsignedCommand> = {}) {
  return encodeCommand({ACTION: action, PAYLOAD: payload, EE_DEST: node.address, INITIATOR_ID: 'unit', SESSION_ID: 's', TIME: formatTime(new Date(NOW)), ...extra}, signer)
}

function context(cache: ReplayCache, extra: Partial<AdmissionContext> = {}): AdmissionContext {
  return {
    nodeAddress: node.address,
    skewMs: 5 * 60_000,
    now: NOW,
    isAllowed: (sender) => sender === friend.address,
    remember: (sender, hash, expires) => cache.check(sender, hash, expires),
    ...extra,
  }
}

function encrypted(action: UnsignedCommand['ACTION'], payload: unknown, signer = friend, extra: Partial<UnsignedCommand> = {}) {
  return encodeEncryptedCommand({ACTION: action, PAYLOAD: payload, EE_DEST: node.address, INITIATOR_ID: 'unit', SESSION_ID: 's', TIME: formatTime(new Date(NOW)), ...extra}, signer)
}

describe('admitCommand: encrypted commands', () => {
  const secrets = {NAME: 'p', SECRETS: {DB_URL: {SENDER: stranger.address, DATA: 'AAAA'}}}

  it('opens an allowed sender\'s command with the node key after the replay check; R1_SECRETS only so', async () => {
    const cache = await ReplayCache.open({now: () => NOW})
    const sealed = encrypted('R1_SECRETS', secrets)
    expect(sealed.text).not.toContain('R1_SECRETS')
    expect(admitCommand(sealed.text, context(cache, {identity: node}))).toMatchObject({ok: true, encrypted: true, action: 'R1_SECRETS', payload: secrets})
    expect(admitCommand(sealed.text, context(cache, {identity: node}))).toMatchObject({ok: false, reason: 'REPLAY'})
    const clear = frame('R1_SECRETS', secrets)
    expect(admitCommand(clear.text, context(cache, {identity: node}))).toMatchObject({ok: false, reason: 'ENCRYPTION_REQUIRED', action: 'R1_SECRETS'})
  })

  it('a stranger is NOT_ALLOWED before any decryption; a node without its key: BAD_ENCRYPTION', async () => {
    const cache = await ReplayCache.open({now: () => NOW})
    let opened = false
    const spy = {...node, get privateKey() {
      opened = true
      return node.privateKey
    }}
    expect(admitCommand(encrypted('R1_STATE', null, stranger).text, context(cache, {identity: spy}))).toMatchObject({ok: false, reason: 'NOT_ALLOWED'})
    expect(opened).toBe(false)
    expect(admitCommand(encrypted('R1_STATE', null).text, context(cache))).toMatchObject({ok: false, reason: 'BAD_ENCRYPTION'})
  })
})

describe('admitCommand: the rules in order, pure', () => {
  it('admits an allowed sender once; the same frame again is REPLAY', async () => {
    const cache = await ReplayCache.open({now: () => NOW})
    const {text, hash} = frame('R1_STATE', null)
    expect(admitCommand(text, context(cache))).toMatchObject({ok: true, allowed: true, hash, action: 'R1_STATE'})
    expect(admitCommand(text, context(cache))).toMatchObject({ok: false, reason: 'REPLAY', hash})
  })

  it('takes the signature check a transport already made (the broker front verifies to route): same verdicts', async () => {
    const cache = await ReplayCache.open({now: () => NOW})
    const {text, hash} = frame('R1_STATE', null)
    const verified = decodeSigned(text)
    if (!verified.ok) throw new Error(verified.detail)
    expect(admitCommand(text, context(cache), verified)).toMatchObject({ok: true, allowed: true, hash, action: 'R1_STATE', sender: friend.address})
    expect(admitCommand(text, context(cache), verified)).toMatchObject({ok: false, reason: 'REPLAY', hash})
    const secrets = {NAME: 'p', SECRETS: {DB_URL: {SENDER: stranger.address, DATA: 'AAAA'}}}
    const sealed = encrypted('R1_SECRETS', secrets)
    const sealedVerified = decodeSigned(sealed.text)
    if (!sealedVerified.ok) throw new Error(sealedVerified.detail)
    expect(admitCommand(sealed.text, context(cache, {identity: node}), sealedVerified)).toMatchObject({ok: true, encrypted: true, action: 'R1_SECRETS', payload: secrets})
    const fromStranger = frame('R1_STATE', null, stranger)
    const strangerVerified = decodeSigned(fromStranger.text)
    if (!strangerVerified.ok) throw new Error(strangerVerified.detail)
    expect(admitCommand(fromStranger.text, context(cache), strangerVerified)).toMatchObject({ok: false, reason: 'NOT_ALLOWED'})
  })

  it('oversized, tampered, wrong destination, skewed: refused with their reason; malformed input strikes', async () => {
    const cache = await ReplayCache.open({now: () => NOW})
    expect(admitCommand('x'.repeat(1024 * 1024 + 1), context(cache))).toMatchObject({ok: false, reason: 'INVALID_MESSAGE', strike: true})
    expect(admitCommand('{', context(cache))).toMatchObject({ok: false, reason: 'BAD_JSON', strike: true})
    const good = frame('UPDATE_CONFIG', {NAME: 'a', TYPE: 'Void', PLUGINS: []})
    expect(admitCommand(good.text.replace('"a"', '"b"'), context(cache))).toMatchObject({ok: false, reason: 'BAD_SIGNATURE'})
    const elsewhere = frame('R1_STATE', null, friend, {EE_DEST: generateIdentity().address})
    expect(admitCommand(elsewhere.text, context(cache))).toMatchObject({ok: false, reason: 'WRONG_DEST', strike: false})
    for (const offset of [-5 * 60_000 - 1000, 5 * 60_000 + 1000]) {
      const skewed = frame('R1_STATE', null, friend, {TIME: formatTime(new Date(NOW + offset))})
      expect(admitCommand(skewed.text, context(cache))).toMatchObject({ok: false, reason: 'TIME_SKEW'})
    }
    expect(cache.size).toBe(0)
  })

  it('a stranger: NOT_ALLOWED, and nothing enters the replay cache; its FULL_HEARTBEAT is admitted as public, not cached either', async () => {
    const cache = await ReplayCache.open({now: () => NOW})
    for (let i = 0; i < 50; i++) {
      const {text} = frame('UPDATE_CONFIG', {NAME: `p${i}`, TYPE: 'Void', PLUGINS: []}, stranger)
      expect(admitCommand(text, context(cache))).toMatchObject({ok: false, reason: 'NOT_ALLOWED'})
    }
    const heartbeat = frame('FULL_HEARTBEAT', null, stranger)
    expect(admitCommand(heartbeat.text, context(cache))).toMatchObject({ok: true, allowed: false})
    expect(admitCommand(heartbeat.text, context(cache))).toMatchObject({ok: true, allowed: false})
    expect(cache.size).toBe(0)
  })

  it('a sender at its replay bound is THROTTLED; another allowed sender is not', async () => {
    const other = generateIdentity()
    const cache = await ReplayCache.open({now: () => NOW, perSender: 3})
    const ctx = context(cache, {isAllowed: (s) => s === friend.address || s === other.address})
    const verdicts = Array.from({length: 5}, (_, i) => admitCommand(frame('R1_STATE', {NAME: `n${i}`}).text, ctx))
    expect(verdicts.map((v) => (v.ok ? 'ok' : v.reason))).toEqual(['ok', 'ok', 'ok', 'THROTTLED', 'THROTTLED'])
    expect(admitCommand(frame('R1_STATE', null, other).text, ctx)).toMatchObject({ok: true})
  })
})

describe('ReplayCache', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'r1-replay-'))
  })
  afterAll(async () => rm(dir, {recursive: true, force: true}))

  it('keeps a hash through expiry ticks inside its window, forgets it after', async () => {
    let now = NOW
    const cache = await ReplayCache.open({now: () => now})
    expect(cache.check('a', 'h1', NOW + 60_000)).toBe('fresh')
    now += 30_000
    cache.expire()
    expect(cache.check('a', 'h1', NOW + 60_000)).toBe('replay')
    now += 31_000
    cache.expire()
    expect(cache.size).toBe(0)
    expect(cache.countFor('a')).toBe(0)
  })

  it('survives a reopen of its file (fsynced lines), drops expired and torn lines', async () => {
    let now = NOW
    const path = join(dir, 'replay.log')
    const cache = await ReplayCache.open({path, now: () => now})
    const hashes = Array.from({length: 3}, (_, i) => String(i).repeat(64))
    cache.check('a', hashes[0]!, NOW + 10_000)
    cache.check('a', hashes[1]!, NOW + 120_000)
    cache.check('b', hashes[2]!, NOW + 120_000)
    await cache.durable()
    await cache.close()
    await import('node:fs/promises').then((fs) => fs.appendFile(path, 'f'.repeat(40)))
    now += 60_000
    const again = await ReplayCache.open({path, now: () => now})
    expect(again.check('x', hashes[0]!, now + 1)).toBe('fresh') // expired before the reopen
    expect(again.check('x', hashes[1]!, now + 1)).toBe('replay')
    expect(again.check('x', hashes[2]!, now + 1)).toBe('replay')
    expect(again.countFor('b')).toBe(1)
    await again.durable()
    expect((await readFile(path, 'utf8')).split('\n').filter(Boolean)).toHaveLength(3) // compacted at open (2 live), then one appended
    await again.close()
  })
})

describe('ReplayCache compaction', () => {
  it('rewrites the file without expired lines once they dominate; a reopen sees only the live hashes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'r1-replay-compact-'))
    try {
      let now = NOW
      const path = join(dir, 'replay.log')
      const cache = await ReplayCache.open({path, now: () => now})
      const hash = (i: number) => i.toString(16).padStart(64, '0')
      for (let i = 0; i < 1500; i++) cache.check('a', hash(i), i < 1400 ? NOW + 1000 : NOW + 600_000)
      await cache.durable()
      expect((await readFile(path, 'utf8')).split('\n').filter(Boolean)).toHaveLength(1500)
      now += 2000
      cache.expire()
      await cache.durable()
      expect((await readFile(path, 'utf8')).split('\n').filter(Boolean)).toHaveLength(100)
      cache.check('b', hash(9999), NOW + 600_000)
      await cache.durable()
      await cache.close()
      const again = await ReplayCache.open({path, now: () => now})
      expect(again.size).toBe(101)
      expect(again.check('c', hash(1450), now + 1)).toBe('replay')
      expect(again.check('c', hash(9999), now + 1)).toBe('replay')
      expect(again.check('c', hash(5), now + 1)).toBe('fresh')
      await again.close()
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})

describe('TokenBucket, FloodGuard', () => {
  it('burst then the sustained rate, on the given clock', () => {
    const bucket = new TokenBucket(3, 2, 0)
    expect([1, 2, 3, 4].map(() => bucket.take(0))).toEqual([true, true, true, false])
    expect(bucket.take(499)).toBe(false)
    expect(bucket.take(500)).toBe(true)
  })

  it('closes after more than closeAfter refusals within the window', () => {
    const guard = new FloodGuard(3, 1000)
    expect([0, 1, 2].map((t) => guard.strike(t))).toEqual([true, true, true])
    expect(guard.strike(3)).toBe(false)
    const slow = new FloodGuard(2, 1000)
    expect([0, 600, 1200, 1800, 2400].map((t) => slow.strike(t))).toEqual([true, true, true, true, true])
  })
})

describe('ConnectionSlots', () => {
  it('strangers never fill every slot: over the soft cap the oldest unauthenticated is evicted', () => {
    const slots = new ConnectionSlots<string>({max: 4, reserved: 1, perIp: 100})
    for (const c of ['s1', 's2', 's3']) {
      expect(slots.admit('9.9.9.9')).toEqual({ok: true, evict: []})
      slots.add(c, '9.9.9.9')
    }
    expect(slots.admit('1.1.1.1')).toEqual({ok: true, evict: ['s1']})
  })

  it("per IP: the IP's oldest unauthenticated makes room; other IPs untouched; authenticated never evicted", () => {
    const slots = new ConnectionSlots<string>({max: 100, reserved: 10, perIp: 2})
    slots.add('a1', '1.1.1.1')
    slots.authenticate('a1')
    slots.add('b1', '2.2.2.2')
    slots.add('b2', '2.2.2.2')
    expect(slots.admit('2.2.2.2')).toEqual({ok: true, evict: ['b1']})
    expect(slots.admit('1.1.1.1')).toEqual({ok: true, evict: []})
  })

  it('all slots authenticated: refused', () => {
    const slots = new ConnectionSlots<string>({max: 2, reserved: 0, perIp: 10})
    for (const c of ['a', 'b']) {
      slots.add(c, 'x')
      slots.authenticate(c)
    }
    expect(slots.admit('x')).toMatchObject({ok: false})
    slots.remove('a')
    expect(slots.admit('x')).toEqual({ok: true, evict: []})
  })
})

describe('PendingSockets (before the upgrade)', () => {
  it('per IP: a new socket beyond the limit drops that IP’s oldest, never another IP’s', () => {
    const pending = new PendingSockets<string>({perIp: 2, max: 100})
    expect(pending.add('a1', 'A')).toEqual([])
    expect(pending.add('b1', 'B')).toEqual([])
    expect(pending.add('a2', 'A')).toEqual([])
    expect(pending.add('a3', 'A')).toEqual(['a1'])
    expect(pending.countFor('A')).toBe(2)
    expect(pending.countFor('B')).toBe(1)
  })

  it('in all: beyond max the oldest of any IP is dropped; a released (upgraded or closed) socket frees its place', () => {
    const pending = new PendingSockets<string>({perIp: 10, max: 3})
    pending.add('a1', 'A')
    pending.add('b1', 'B')
    pending.add('c1', 'C')
    expect(pending.add('d1', 'D')).toEqual(['a1'])
    expect(pending.release('b1')).toBe(true)
    expect(pending.release('b1')).toBe(false)
    expect(pending.add('e1', 'E')).toEqual([])
    expect(pending.size).toBe(3)
    expect(pending.countFor('A')).toBe(0)
  })
})

describe('ipKey', () => {
  it('keeps IPv4 (and IPv4-mapped IPv6) as is and keys IPv6 on its /64', () => {
    expect(ipKey('127.0.0.1')).toBe('127.0.0.1')
    expect(ipKey('::ffff:10.1.2.3')).toBe('10.1.2.3')
    expect(ipKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(ipKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(ipKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(ipKey('::1')).toBe('0:0:0:0::/64')
    expect(ipKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(ipKey(undefined)).toBe('unknown')
  })
})
