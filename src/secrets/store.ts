import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {z} from 'zod'
import {ExitCode, R1Error} from '../errors.js'
import {parseJsonOrUndefined, writeFileAtomic} from '../files.js'
import {decrypt, encrypt} from '../protocol/encryption.js'
import {type Identity, generateIdentity, isAddress, normalizeAddress} from '../protocol/identity.js'
import {SECRET_NAME_PATTERN} from '../protocol/secret-refs.js'
import {formatBytes} from '../ui/bytes.js'

/**
 * The project's secret store, `.r1/secrets.json` (mode 0600, `.r1/` is git-ignored): per target,
 * each value encrypted to that target's node address from a throwaway key, so at rest it is
 * ciphertext that only the node can open, not even the CLI user who set it.
 */

export const SECRETS_DIR = '.r1'
export const SECRETS_FILE = 'secrets.json'

export {SECRET_NAME_PATTERN} from '../protocol/secret-refs.js'

/** Largest value accepted (a secret is a credential, not a file). */
export const MAX_SECRET_BYTES = 64 * 1024

/** One value, sealed to a node: Ratio1's EE_ENCRYPTED_DATA from `sender`, a key nobody kept. */
export const SealedSecretSchema = z.strictObject({
  sender: z.string().refine(isAddress, 'not an address'),
  data: z.string().min(1),
  setAt: z.iso.datetime(),
})
export type SealedSecret = z.infer<typeof SealedSecretSchema>

const TargetSecretsSchema = z.strictObject({
  /** The node address the values were sealed to: they open only with its key. */
  address: z.string().refine(isAddress, 'not an address'),
  secrets: z.record(z.string().regex(SECRET_NAME_PATTERN), SealedSecretSchema),
})

export const SecretsFileSchema = z.strictObject({
  version: z.literal(1),
  targets: z.record(z.string(), TargetSecretsSchema),
})
export type SecretsFile = z.infer<typeof SecretsFileSchema>

/** Where a secret should go: a named target of config.yaml and its node address. */
export interface SecretTarget {
  name: string
  address: string
}

/** What `r1 secrets ls` shows: never a value. */
export interface SecretEntry {
  name: string
  target: string
  /** When it was set (ISO 8601). */
  setAt: string
  /** The node address it is sealed to. */
  address: string
  /** True when config.yaml now gives the target another address: the node cannot open it; set it again. */
  stale: boolean
}

export function secretsPath(projectDir: string): string {
  return join(projectDir, SECRETS_DIR, SECRETS_FILE)
}

export function checkSecretName(name: string): string {
  if (SECRET_NAME_PATTERN.test(name)) return name
  const suggestion = name.toUpperCase().replace(/[^A-Z0-9_]/g, '_').replace(/^([0-9])/, '_$1').slice(0, 128)
  throw new R1Error(`"${name}" is not a secret name: use UPPER_SNAKE_CASE (letters, digits, _).`, ExitCode.USAGE, {
    code: 'BAD_SECRET_NAME',
    hint: `e.g. ${suggestion || 'DB_URL'}`,
  })
}

/** Seals a value to a node address from a throwaway identity (forgotten at once). */
export function sealSecret(value: string, nodeAddress: string, now: Date = new Date()): SealedSecret {
  const sender: Identity = generateIdentity()
  return {sender: sender.address, data: encrypt(value, normalizeAddress(nodeAddress), sender), setAt: now.toISOString()}
}

/** The value of a sealed secret, with the node's identity (throws DecryptionError otherwise). */
export function openSecret(sealed: Pick<SealedSecret, 'sender' | 'data'>, node: Identity): string {
  return decrypt(sealed.data, sealed.sender, node)
}

/** The store, or an empty one when the project has none yet. A corrupt file is an error naming it. */
export async function readSecrets(projectDir: string): Promise<SecretsFile> {
  const path = secretsPath(projectDir)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {version: 1, targets: {}}
    throw error
  }
  const parsed = SecretsFileSchema.safeParse(parseJsonOrUndefined(text))
  if (!parsed.success) {
    throw new R1Error(`${path} is not a valid secrets file.`, ExitCode.FAILURE, {
      code: 'SECRETS_CORRUPT',
      hint: `Move it away and set the secrets again with \`r1 secrets set NAME\` (only the nodes can read the old values).`,
    })
  }
  return parsed.data
}

/** The project's own state folder `.r1/` (mode 0700, git-ignored), created when missing; returns its path. */
export async function projectStateDir(projectDir: string): Promise<string> {
  const dir = join(projectDir, SECRETS_DIR)
  await mkdir(dir, {recursive: true, mode: 0o700})
  // Keeps the store out of git even in a project whose .gitignore forgot `.r1/`.
  await writeFile(join(dir, '.gitignore'), '*\n', {flag: 'wx'}).catch(() => undefined)
  return dir
}

async function writeSecrets(projectDir: string, file: SecretsFile): Promise<void> {
  await projectStateDir(projectDir)
  await writeFileAtomic(secretsPath(projectDir), JSON.stringify(file, null, 2) + '\n', {mode: 0o600})
}

/**
 * Stores `value` for `target`, sealed to its address. A target whose address changed since its
 * other secrets were set keeps only the new value (the old ones no node can open): they are
 * returned as `dropped`.
 */
export async function setSecret(projectDir: string, target: SecretTarget, name: string, value: string, now: Date = new Date()): Promise<{entry: SecretEntry; dropped: string[]}> {
  checkSecretName(name)
  if (Buffer.byteLength(value, 'utf8') > MAX_SECRET_BYTES) {
    throw new R1Error(`The value of ${name} is over ${formatBytes(MAX_SECRET_BYTES)}.`, ExitCode.USAGE, {
      code: 'SECRET_TOO_LARGE',
      hint: 'A secret holds a credential; ship files with the project instead.',
    })
  }
  const address = normalizeAddress(target.address)
  const file = await readSecrets(projectDir)
  const previous = file.targets[target.name]
  const sameNode = previous !== undefined && normalizeAddress(previous.address) === address
  const dropped = previous && !sameNode ? Object.keys(previous.secrets).filter((n) => n !== name) : []
  const kept = sameNode ? previous.secrets : {}
  const sealed = sealSecret(value, address, now)
  file.targets[target.name] = {address, secrets: sortedRecord({...kept, [name]: sealed})}
  file.targets = sortedRecord(file.targets)
  await writeSecrets(projectDir, file)
  return {entry: {name, target: target.name, setAt: sealed.setAt, address, stale: false}, dropped}
}

/** Removes a secret of a target; false when there was none. */
export async function removeSecret(projectDir: string, target: string, name: string): Promise<boolean> {
  const file = await readSecrets(projectDir)
  const secrets = file.targets[target]?.secrets
  if (!secrets || !Object.hasOwn(secrets, name)) return false
  delete secrets[name]
  if (Object.keys(secrets).length === 0) delete file.targets[target]
  if (Object.keys(file.targets).length === 0) await rm(secretsPath(projectDir), {force: true})
  else await writeSecrets(projectDir, file)
  return true
}

/**
 * The stored secrets (names, targets, dates; never values), sorted by target then name, for the
 * given targets (all when omitted). `addresses` (target → address in config.yaml) marks the stale ones.
 */
export function listSecrets(file: SecretsFile, addresses: Record<string, string> = {}, targets?: string[]): SecretEntry[] {
  const entries: SecretEntry[] = []
  for (const [target, stored] of Object.entries(file.targets)) {
    if (targets && !targets.includes(target)) continue
    const current = addresses[target]
    const stale = current === undefined || normalizeAddress(current) !== normalizeAddress(stored.address)
    for (const [name, sealed] of Object.entries(stored.secrets)) {
      entries.push({name, target, setAt: sealed.setAt, address: stored.address, stale})
    }
  }
  return entries.sort((a, b) => (a.target === b.target ? cmp(a.name, b.name) : cmp(a.target, b.target)))
}

/**
 * The sealed values a deploy ships to one target, by name (only those it asks for). Missing or
 * stale ones are an error (exit 3) that says how to set them.
 */
export function sealedFor(file: SecretsFile, target: SecretTarget, names: readonly string[]): Record<string, Pick<SealedSecret, 'sender' | 'data'>> {
  const stored = file.targets[target.name]
  const usable = stored && normalizeAddress(stored.address) === normalizeAddress(target.address) ? stored.secrets : {}
  const missing = names.filter((n) => !Object.hasOwn(usable, n))
  if (missing.length > 0) {
    throw new R1Error(`Secret${missing.length === 1 ? '' : 's'} ${missing.join(', ')} not set for target ${target.name}.`, ExitCode.INVALID_CONFIG, {
      code: 'SECRET_MISSING',
      hint: `Set ${missing.length === 1 ? 'it' : 'each'} with: r1 secrets set ${missing[0]} --target ${target.name}`,
      details: {target: target.name, missing},
    })
  }
  return Object.fromEntries(names.map((n) => [n, {sender: usable[n].sender, data: usable[n].data}]))
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => cmp(a, b)))
}
