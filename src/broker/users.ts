import {randomBytes, scrypt as scryptCallback, timingSafeEqual} from 'node:crypto'
import {mkdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {z} from 'zod'
import {ExitCode, R1Error} from '../errors.js'
import {writeFileAtomic} from '../files.js'
import {isAddress, normalizeAddress} from '../protocol/identity.js'
import {readSecretValue} from '../secrets/input.js'
import type {BrokerIdentity, BrokerRole} from './acl.js'

/**
 * The broker's users: `users.json` in its data dir (mode 0600), one entry per login name with its
 * role, the r1 address it acts for and an scrypt hash of its password (never the password).
 */

export const USERS_FILE = 'users.json'
export const MIN_PASSWORD_LENGTH = 8
const NAME_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/
// scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB, ~50 ms): slow to guess, fast enough for a login.
const SCRYPT = {N: 16_384, r: 8, p: 1, keylen: 32} as const

const userSchema = z.strictObject({
  role: z.enum(['node', 'client']),
  address: z.string(),
  /** `scrypt$N$r$p$<salt base64>$<hash base64>` */
  password: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/),
  added: z.string(),
})
const fileSchema = z.strictObject({version: z.literal(1), users: z.record(z.string(), userSchema)})
type UsersFile = z.infer<typeof fileSchema>

export interface BrokerUser extends BrokerIdentity {
  /** ISO time the user was added. */
  added: string
}

export function usersPath(dataDir: string): string {
  return join(dataDir, USERS_FILE)
}

/** Throws a usage error when `name` cannot be a login name or `address` is not an r1 address (checked before asking for a password). */
export function checkNewUser(user: {name: string; address: string}): void {
  if (!NAME_PATTERN.test(user.name)) throw new R1Error(`User name "${user.name}" must be 1 to 64 letters, digits or _ . @ -`, ExitCode.USAGE, {code: 'BROKER_USER_NAME'})
  if (!isAddress(user.address)) {
    throw new R1Error(`"${user.address}" is not an r1 address`, ExitCode.USAGE, {code: 'BROKER_USER_ADDRESS', hint: 'Pass the 0xai_… address the node prints (`r1 node info`) or the client uses (`r1 keys show`).'})
  }
}

async function readUsers(dataDir: string): Promise<UsersFile> {
  const file = usersPath(dataDir)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {version: 1, users: {}}
    throw error
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw corrupt(file, (error as Error).message)
  }
  const result = fileSchema.safeParse(parsed)
  if (!result.success) throw corrupt(file, result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '))
  return result.data
}

function corrupt(file: string, why: string): R1Error {
  return new R1Error(`The broker's user file ${file} is not valid: ${why}`, ExitCode.FAILURE, {
    code: 'BROKER_USERS_INVALID',
    hint: 'Restore it from a backup, or move it aside and add the users again with `r1 broker user add`.',
  })
}

function toUser(name: string, entry: UsersFile['users'][string]): BrokerUser {
  return {name, role: entry.role, address: entry.address, added: entry.added}
}

/** Every user, sorted by name. */
export async function listUsers(dataDir: string): Promise<BrokerUser[]> {
  const {users} = await readUsers(dataDir)
  return Object.entries(users)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, entry]) => toUser(name, entry))
}

/** Adds a user, or replaces the role, address and password of one with the same name. */
export async function addUser(dataDir: string, user: {name: string; role: BrokerRole; address: string; password: string}): Promise<{user: BrokerUser; replaced: boolean}> {
  checkNewUser(user)
  if (user.password.length < MIN_PASSWORD_LENGTH) {
    throw new R1Error(`The password of ${user.name} is shorter than ${MIN_PASSWORD_LENGTH} characters: nothing was stored.`, ExitCode.USAGE, {code: 'BROKER_PASSWORD_SHORT'})
  }
  const file = await readUsers(dataDir)
  const replaced = Object.hasOwn(file.users, user.name)
  const entry = {role: user.role, address: normalizeAddress(user.address), password: await hashPassword(user.password), added: new Date().toISOString()}
  file.users[user.name] = entry
  await mkdir(dataDir, {recursive: true, mode: 0o700})
  await writeFileAtomic(usersPath(dataDir), JSON.stringify(file, null, 2) + '\n', {mode: 0o600})
  return {user: toUser(user.name, entry), replaced}
}

/** Removes a user; false when there was none of that name. */
export async function removeUser(dataDir: string, name: string): Promise<boolean> {
  const file = await readUsers(dataDir)
  if (!Object.hasOwn(file.users, name)) return false
  delete file.users[name]
  await writeFileAtomic(usersPath(dataDir), JSON.stringify(file, null, 2) + '\n', {mode: 0o600})
  return true
}

/** A new user's password: from `file` (one trailing newline dropped), else piped on stdin or typed at a hidden prompt. */
export async function readPassword(name: string, options: {file?: string; json?: boolean; signal?: AbortSignal}): Promise<string> {
  if (options.file === undefined) return readSecretValue(`the password of ${name}`, {json: options.json, signal: options.signal, usage: `r1 broker user add ${name} … --password-file <file>`})
  const text = await readFile(options.file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new R1Error(`Cannot read the password file ${options.file}: ${error.code ?? error.message}`, ExitCode.USAGE, {code: 'BROKER_PASSWORD_FILE'})
  })
  return text.replace(/\r?\n$/, '')
}

function scrypt(password: string, salt: Buffer, cost: {N: number; r: number; p: number}, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password, salt, keylen, {...cost, maxmem: 64 * 1024 * 1024}, (error, key) => (error ? reject(error) : resolve(key)))
  })
}

async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scrypt(password, salt, SCRYPT, SCRYPT.keylen)
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), hash.toString('base64')].join('$')
}

async function passwordMatches(password: Buffer, stored: string): Promise<boolean> {
  const [, n, r, p, salt, hash] = stored.split('$')
  const expected = Buffer.from(hash, 'base64')
  const actual = await scrypt(password.toString('utf8'), Buffer.from(salt, 'base64'), {N: Number(n), r: Number(r), p: Number(p)}, expected.length)
  return timingSafeEqual(actual, expected)
}

/**
 * Checks logins against the user file of a data dir, re-reading it when it changes, so users added or
 * removed with `r1 broker user` apply to the next login of a running broker.
 */
export class UserStore {
  private cached?: {ino: number; mtimeMs: number; size: number; file: UsersFile}

  constructor(readonly dataDir: string) {}

  /** True when at least one user exists (the broker then refuses anonymous logins). */
  async hasUsers(): Promise<boolean> {
    return Object.keys((await this.current()).users).length > 0
  }

  /** The identity of a correct login, else undefined. */
  async verify(name: string | undefined, password: Buffer | undefined): Promise<BrokerIdentity | undefined> {
    if (name === undefined || password === undefined) return undefined
    const {users} = await this.current()
    if (!Object.hasOwn(users, name)) return undefined
    const entry = users[name]
    return (await passwordMatches(password, entry.password)) ? {name, role: entry.role, address: entry.address} : undefined
  }

  private async current(): Promise<UsersFile> {
    const info = await stat(usersPath(this.dataDir)).catch(() => undefined)
    if (!info) return {version: 1, users: {}}
    if (this.cached && this.cached.ino === info.ino && this.cached.mtimeMs === info.mtimeMs && this.cached.size === info.size) return this.cached.file
    const file = await readUsers(this.dataDir)
    this.cached = {ino: info.ino, mtimeMs: info.mtimeMs, size: info.size, file}
    return file
  }
}
