import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {connect, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {startTestNode} from './helpers.js'

/**
 * The front door before the WebSocket upgrade, over real sockets: raw TCP/TLS connections are counted
 * from their accept (per IP and in all, the oldest dropped beyond), a socket has the auth grace to
 * finish its TLS handshake and its upgrade request, and an unauthenticated connection at the end of
 * its grace is terminated (its socket freed even when the peer never answers the close).
 */

interface Raw {
  socket: Socket
  closed: Promise<void>
  isClosed: () => boolean
}

/** A TCP connection that sends `text` and then nothing. */
function rawSocket(url: string, text: string, localAddress?: string): Promise<Raw> {
  const {hostname, port} = new URL(url.replace(/^ws/, 'http'))
  return new Promise((resolve, reject) => {
    const socket = connect({host: hostname, port: Number(port), ...(localAddress ? {localAddress} : {})})
    let done = false
    const closed = new Promise<void>((r) => socket.once('close', () => ((done = true), r())))
    socket.on('error', () => undefined)
    socket.on('data', () => undefined)
    socket.once('connect', () => {
      if (text) socket.write(text)
      resolve({socket, closed, isClosed: () => done})
    })
    socket.once('error', reject)
  })
}

const PARTIAL = 'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n'

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !condition(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(condition()).toBe(true)
}

/** Fails (instead of hanging to the test timeout) when `promise` has not settled in 20 s: the defaults being fixed are 30 to 120 s. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not within 20 s: ${what}`)), 20_000)))
  try {
    return await Promise.race([promise, bound])
  } finally {
    clearTimeout(timer)
  }
}

const opened: Raw[] = []
afterEach(() => {
  for (const raw of opened.splice(0)) raw.socket.destroy()
})

describe('sockets before the upgrade', () => {
  it('one IP sending partial headers holds at most maxConnectionsPerIp sockets (its oldest dropped); an allow-listed session is served while they are open', async () => {
    const t = await startTestNode({server: {maxConnectionsPerIp: 10, authGraceMs: 30_000}})
    try {
      for (let i = 0; i < 60; i++) opened.push(await rawSocket(t.node.url, PARTIAL, '127.0.0.1'))
      await within(Promise.all(opened.slice(0, 50).map((r) => r.closed)), 'the 50 oldest dropped')
      await until(() => t.node.server.pending.countFor('127.0.0.1') === 10)
      expect(opened.slice(50).every((r) => !r.isClosed())).toBe(true)
      // the session's own socket drops the oldest of them, and once upgraded is no longer counted
      const session = await t.connect()
      expect((await session.state()).ADDRESS).toBe(t.node.address)
      expect(t.node.server.pending.countFor('127.0.0.1')).toBe(9)
      expect(opened.slice(51).every((r) => !r.isClosed())).toBe(true)
    } finally {
      for (const raw of opened) raw.socket.destroy()
      await t.dispose()
    }
  })

  it('a socket that has not finished its upgrade request within the grace is closed; an upgraded, authenticated one is not bound by that timeout', async () => {
    const t = await startTestNode({server: {authGraceMs: 500}})
    try {
      const session = await t.connect()
      await session.state()
      for (let i = 0; i < 5; i++) opened.push(await rawSocket(t.node.url, PARTIAL))
      opened.push(await rawSocket(t.node.url, ''))
      await within(Promise.all(opened.map((r) => r.closed)), 'partial requests closed after the grace')
      expect(t.node.server.pending.size).toBe(0)
      await new Promise((r) => setTimeout(r, 1000))
      expect((await session.state()).ADDRESS).toBe(t.node.address)
    } finally {
      for (const raw of opened) raw.socket.destroy()
      await t.dispose()
    }
  })

  it('in all: at most maxPendingConnections sockets before the upgrade, whatever their addresses', async () => {
    const t = await startTestNode({server: {maxPendingConnections: 20, maxConnectionsPerIp: 1000}})
    try {
      for (let i = 0; i < 40; i++) opened.push(await rawSocket(t.node.url, PARTIAL, `127.0.0.${2 + (i % 5)}`))
      await Promise.all(opened.slice(0, 20).map((r) => r.closed))
      await until(() => t.node.server.pending.size === 20)
      expect(opened.slice(20).every((r) => !r.isClosed())).toBe(true)
      const session = await t.connect()
      expect((await session.state()).ADDRESS).toBe(t.node.address)
    } finally {
      for (const raw of opened) raw.socket.destroy()
      await t.dispose()
    }
  })

  it('an upgraded connection whose peer never answers the close is terminated at the end of its grace', async () => {
    const t = await startTestNode({server: {authGraceMs: 300}})
    try {
      const upgrade = [
        'GET / HTTP/1.1',
        'Host: localhost',
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Protocol: r1.v1',
        '',
        '',
      ].join('\r\n')
      const raw = await rawSocket(t.node.url, upgrade)
      opened.push(raw)
      let received = ''
      raw.socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
      await until(() => received.startsWith('HTTP/1.1 101'))
      await until(() => t.node.server.connectionCount === 1)
      // this peer never sends a close frame back: the node does not wait for one (ws would, 30 s)
      await within(raw.closed, 'the unanswered connection terminated')
      await until(() => t.node.server.connectionCount === 0)
    } finally {
      for (const raw of opened) raw.socket.destroy()
      await t.dispose()
    }
  })
})

describe('TLS handshakes', () => {
  it('a socket that never starts its TLS handshake is closed after the grace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'r1-tls-pre-'))
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], {stdio: 'ignore'})
    const t = await startTestNode({tlsCertPath: join(dir, 'cert.pem'), tlsKeyPath: join(dir, 'key.pem'), server: {authGraceMs: 300}})
    try {
      const silent = await rawSocket(t.node.url, '')
      opened.push(silent)
      await until(() => t.node.server.pending.size === 1)
      await within(silent.closed, 'the silent TLS socket closed')
      await until(() => t.node.server.pending.size === 0)
      const session = await t.connect({insecure: true})
      expect((await session.state()).ADDRESS).toBe(t.node.address)
      expect(t.node.server.pending.size).toBe(0) // upgraded (through TLS): no longer counted
    } finally {
      for (const raw of opened) raw.socket.destroy()
      await t.dispose()
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
