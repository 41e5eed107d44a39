import {createPrivateKey, randomBytes} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'
import secp256k1 from 'secp256k1'
import {ExitCode, R1Error} from '../errors.js'
import {writeFileAtomic} from '../files.js'

/**
 * A secp256k1 identity (a CLI session or a node). The address is Ratio1's:
 * `0xai_` + URL-safe base64 of the 33-byte compressed public key.
 *
 * Key files are PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the format Ratio1's SDK writes,
 * created with mode 0600.
 */
export interface Identity {
  /** Raw 32-byte private scalar. */
  readonly privateKey: Uint8Array
  /** 33-byte compressed SEC1 public key. */
  readonly publicKey: Uint8Array
  readonly address: string
}

export const ADDRESS_PREFIX = '0xai_'
/** The old prefix Ratio1 verifiers still accept. */
export const LEGACY_ADDRESS_PREFIX = 'aixp_'
const ADDRESS_RE = /^(0xai_|aixp_)[A-Za-z0-9_-]{44}$/

export function addressFromPublicKey(publicKey: Uint8Array): string {
  return ADDRESS_PREFIX + Buffer.from(publicKey).toString('base64url')
}

// Point validation costs as much as a hash; a node sees the same few senders again and again, a CLI
// driving a fleet the same thousands of nodes.
const keyCache = new Map<string, Uint8Array>()
const MAX_CACHED_KEYS = 20_000

/** The 33-byte public key of an address, or undefined when it is not a valid point. */
export function publicKeyFromAddress(address: string): Uint8Array | undefined {
  const cached = keyCache.get(address)
  if (cached) return cached
  if (!ADDRESS_RE.test(address)) return undefined
  const key = new Uint8Array(Buffer.from(address.slice(5), 'base64url'))
  if (key.length !== 33 || !secp256k1.publicKeyVerify(key)) return undefined
  if (keyCache.size >= MAX_CACHED_KEYS) keyCache.delete(keyCache.keys().next().value!) // the oldest
  keyCache.set(address, key)
  return key
}

/** True for a well-formed `0xai_` (or legacy `aixp_`) address of a valid curve point. */
export function isAddress(value: string): boolean {
  return publicKeyFromAddress(value) !== undefined
}

/** One spelling per key: the `0xai_` form (an `aixp_` address names the same key). */
export function normalizeAddress(address: string): string {
  return address.startsWith(LEGACY_ADDRESS_PREFIX) ? ADDRESS_PREFIX + address.slice(LEGACY_ADDRESS_PREFIX.length) : address
}

export function identityFromPrivateKey(privateKey: Uint8Array): Identity {
  if (privateKey.length !== 32 || !secp256k1.privateKeyVerify(privateKey)) {
    throw new R1Error('Not a valid secp256k1 private key', ExitCode.FAILURE, {code: 'KEY_INVALID'})
  }
  const publicKey = secp256k1.publicKeyCreate(privateKey, true)
  return {privateKey: new Uint8Array(privateKey), publicKey, address: addressFromPublicKey(publicKey)}
}

/**
 * A new identity from 32 random bytes (one in about 2^128 is not a valid scalar: drawn again). Not through
 * node:crypto's key generation: Node 20 can deadlock when a collected key-generation job is destroyed
 * while the key it made is being exported (seen in a test process stuck in a futex).
 */
export function generateIdentity(): Identity {
  let privateKey: Uint8Array
  do privateKey = new Uint8Array(randomBytes(32))
  while (!secp256k1.privateKeyVerify(privateKey))
  return identityFromPrivateKey(privateKey)
}

/** PKCS#8 PEM of an identity (what key files hold). */
export function identityToPem(identity: Identity): string {
  const uncompressed = secp256k1.publicKeyConvert(identity.publicKey, false)
  const jwk = {
    kty: 'EC',
    crv: 'secp256k1',
    d: Buffer.from(identity.privateKey).toString('base64url'),
    x: Buffer.from(uncompressed.slice(1, 33)).toString('base64url'),
    y: Buffer.from(uncompressed.slice(33, 65)).toString('base64url'),
  }
  return createPrivateKey({key: jwk, format: 'jwk'}).export({format: 'pem', type: 'pkcs8'}).toString()
}

/** Reads a PEM private key (PKCS#8 or SEC1 "EC PRIVATE KEY") on secp256k1. */
export function identityFromPem(pem: string, where = 'key file'): Identity {
  let jwk: {crv?: string; d?: string}
  try {
    jwk = createPrivateKey({key: pem, format: 'pem'}).export({format: 'jwk'}) as {crv?: string; d?: string}
  } catch (error) {
    throw new R1Error(`${where} is not a readable PEM private key: ${(error as Error).message}`, ExitCode.FAILURE, {
      code: 'KEY_INVALID',
      hint: 'Regenerate it with `r1 keys generate --force` (the old identity is lost).',
    })
  }
  if (jwk.crv !== 'secp256k1' || !jwk.d) {
    throw new R1Error(`${where} holds a ${jwk.crv ?? 'non-EC'} key, not a secp256k1 key`, ExitCode.FAILURE, {code: 'KEY_INVALID'})
  }
  return identityFromPrivateKey(new Uint8Array(Buffer.from(jwk.d, 'base64url')))
}

/** The CLI's config dir: `$R1_CONFIG_DIR`, else `$XDG_CONFIG_HOME/r1`, else `~/.config/r1`. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.R1_CONFIG_DIR) return env.R1_CONFIG_DIR
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'r1')
}

/** Where the CLI session's key lives. */
export function cliKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'key.pem')
}

/** Where a node's key lives inside its data dir. */
export function nodeKeyPath(dataDir: string): string {
  return join(dataDir, 'node-key.pem')
}

/** Loads a key file; undefined when the file does not exist. */
export async function readIdentity(path: string): Promise<Identity | undefined> {
  let pem: string
  try {
    pem = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new R1Error(`Cannot read the key file ${path}: ${(error as Error).message}`, ExitCode.FAILURE, {code: 'KEY_UNREADABLE'})
  }
  return identityFromPem(pem, path)
}

/** Writes an identity as PEM with mode 0600 (atomically: a crash never leaves half a key). */
export async function writeIdentity(path: string, identity: Identity): Promise<void> {
  await writeFileAtomic(path, identityToPem(identity), {mode: 0o600})
}

/** Loads the key at `path`, creating a new one if there is none (nodes, first CLI use). */
export async function loadOrCreateIdentity(path: string): Promise<{identity: Identity; created: boolean}> {
  const existing = await readIdentity(path)
  if (existing) return {identity: existing, created: false}
  const identity = generateIdentity()
  await writeIdentity(path, identity)
  return {identity, created: true}
}

/** Loads the key at `path` or fails with a hint to generate one. */
export async function requireIdentity(path: string): Promise<Identity> {
  const identity = await readIdentity(path)
  if (!identity) {
    throw new R1Error(`No key at ${path}`, ExitCode.FAILURE, {code: 'KEY_MISSING', hint: 'Create one with `r1 keys generate`.'})
  }
  return identity
}

/** `r1 keys generate`: a new key at `path`; an existing one is kept unless `force`. */
export async function generateKeyFile(path: string, options: {force?: boolean} = {}): Promise<{identity: Identity; path: string; replaced?: string}> {
  const existing = await readIdentity(path).catch((error) => {
    if (options.force) return undefined // an unreadable key is replaced under --force
    throw error
  })
  if (existing && !options.force) {
    throw new R1Error(`A key already exists at ${path} (address ${existing.address})`, ExitCode.FAILURE, {
      code: 'KEY_EXISTS',
      hint: 'Keep using it (`r1 keys show`), or replace it with `r1 keys generate --force` (nodes that allow the old address will refuse the new one).',
    })
  }
  const identity = generateIdentity()
  await writeIdentity(path, identity)
  return {identity, path, ...(existing ? {replaced: existing.address} : {})}
}
