import {readFileSync, statSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {z} from 'zod'
import {ExitCode, R1Error} from '../errors.js'
import {writeFileAtomic} from '../files.js'
import {isAddress, normalizeAddress} from '../protocol/identity.js'

/**
 * A node's allow-list: `allowed.json` in its data dir,
 * `{"version": 1, "allowed": [{"address": "0xai_…", "alias": "laptop", "added": "<ISO time>"}]}`.
 * `r1 node allow` edits it with an atomic write; a running node sees the change on the next command
 * (a stat per check: cheap, and no watcher to leak).
 */
export const AllowEntrySchema = z.object({address: z.string(), alias: z.string().optional(), added: z.string().optional()})
export type AllowEntry = z.infer<typeof AllowEntrySchema>
const AllowFileSchema = z.object({version: z.literal(1), allowed: z.array(AllowEntrySchema)})

export function allowListPath(dataDir: string): string {
  return join(dataDir, 'allowed.json')
}

function parseAllowFile(text: string, path: string): AllowEntry[] {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    throw new R1Error(`${path} is not valid JSON: ${(error as Error).message}`, ExitCode.INVALID_CONFIG, {
      code: 'ALLOWLIST_INVALID',
      hint: 'Fix or delete the file, then add addresses again with `r1 node allow`.',
    })
  }
  const parsed = AllowFileSchema.safeParse(data)
  if (!parsed.success) {
    throw new R1Error(`${path} is not an r1 allow-list: ${parsed.error.issues[0]?.message}`, ExitCode.INVALID_CONFIG, {code: 'ALLOWLIST_INVALID'})
  }
  return parsed.data.allowed
}

/** Reads the allow-list (empty when the file does not exist). */
export async function readAllowList(dataDir: string): Promise<AllowEntry[]> {
  const path = allowListPath(dataDir)
  try {
    return parseAllowFile(await readFile(path, 'utf8'), path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
}

function checkedAddress(address: string): string {
  if (!isAddress(address)) {
    throw new R1Error(`"${address}" is not an r1/Ratio1 address`, ExitCode.USAGE, {
      code: 'ADDRESS_INVALID',
      hint: 'An address is 0xai_ followed by 44 URL-safe base64 characters; `r1 keys show` prints yours.',
    })
  }
  return normalizeAddress(address)
}

function writeAllowList(dataDir: string, entries: AllowEntry[]): Promise<void> {
  return writeFileAtomic(allowListPath(dataDir), JSON.stringify({version: 1, allowed: entries}, null, 2) + '\n', {mode: 0o600})
}

/** Adds (or re-aliases) an address; returns the new list. */
export async function allowAddress(dataDir: string, address: string, alias?: string): Promise<{entries: AllowEntry[]; added: boolean}> {
  const normalized = checkedAddress(address)
  const entries = await readAllowList(dataDir)
  const existing = entries.find((e) => e.address === normalized)
  if (existing) {
    if (alias !== undefined) existing.alias = alias
  } else {
    entries.push({address: normalized, ...(alias === undefined ? {} : {alias}), added: new Date().toISOString()})
  }
  await writeAllowList(dataDir, entries)
  return {entries, added: !existing}
}

/** Takes an address off the list (a running node refuses its commands and ends its subscription); returns the new list. */
export async function disallowAddress(dataDir: string, address: string): Promise<{entries: AllowEntry[]; removed: boolean}> {
  const normalized = checkedAddress(address)
  const entries = await readAllowList(dataDir)
  const kept = entries.filter((e) => e.address !== normalized)
  if (kept.length !== entries.length) await writeAllowList(dataDir, kept)
  return {entries: kept, removed: kept.length !== entries.length}
}

/** The running node's view: re-read whenever the file's identity (inode, size, mtime) changes. */
export class AllowList {
  private stamp = ''
  private addresses = new Set<string>()
  private readonly extra: Set<string>

  constructor(
    readonly path: string,
    extra: Iterable<string> = [],
    private readonly onError: (message: string) => void = (m) => process.stderr.write(`r1 node: ${m}\n`),
  ) {
    this.extra = new Set([...extra].map(normalizeAddress))
    this.refresh()
  }

  has(address: string): boolean {
    const normalized = normalizeAddress(address)
    if (this.extra.has(normalized)) return true // always allowed: the file need not be looked at
    this.refresh()
    return this.addresses.has(normalized)
  }

  /** Always-allowed addresses that are not in the file (e.g. the embedded runtime's own session). */
  allow(address: string): void {
    this.extra.add(normalizeAddress(address))
  }

  size(): number {
    this.refresh()
    return this.addresses.size + this.extra.size
  }

  private refresh(): void {
    let stamp: string
    try {
      const s = statSync(this.path)
      stamp = `${s.ino}:${s.size}:${s.mtimeMs}`
    } catch {
      stamp = 'missing'
    }
    if (stamp === this.stamp) return
    this.stamp = stamp
    if (stamp === 'missing') {
      this.addresses = new Set()
      return
    }
    try {
      this.addresses = new Set(parseAllowFile(readFileSync(this.path, 'utf8'), this.path).map((e) => normalizeAddress(e.address)))
    } catch (error) {
      // A broken file keeps the last good list rather than locking everyone out or letting everyone in.
      this.onError(`${(error as Error).message}; keeping the previous allow-list (${this.addresses.size} addresses)`)
    }
  }
}
