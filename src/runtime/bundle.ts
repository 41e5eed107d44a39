import {createHash} from 'node:crypto'
import {existsSync, readFileSync, readdirSync, rmSync, statSync, type Stats} from 'node:fs'
import {access, mkdir, readFile} from 'node:fs/promises'
import {isAbsolute, join, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {ExitCode, R1Error} from '../errors.js'
import {writeFileAtomic} from '../files.js'
import {NotificationCode, NotificationType} from '../protocol/codes.js'

/**
 * Plugin bundles: one self-contained ES module per entry, named by the sha256 of its bytes
 * (the artifact `r1 run` runs and `r1 deploy` ships).
 */

export interface Bundle {
  /** Hex sha256 of `bytes`. */
  hash: string
  bytes: Uint8Array
  /** The entry, absolute. */
  entry: string
  /** Every source file that went into the bundle (absolute): what `--watch` watches. */
  inputs: string[]
}

export interface BundleDiagnostic {
  file: string
  line: number
  column: number
  message: string
  lineText?: string
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

const HASH = /^[0-9a-f]{64}$/

/** The SDK source that `r1/plugin` resolves to inside a bundle (define.ts imports nothing). */
async function sdkModuleSource(): Promise<{contents: string; loader: 'js' | 'ts'}> {
  const js = fileURLToPath(new URL('../plugin/define.js', import.meta.url))
  const useJs = existsSync(js)
  const source = await readFile(useJs ? js : fileURLToPath(new URL('../plugin/define.ts', import.meta.url)), 'utf8')
  const constants = `\nexport const NotificationCode = Object.freeze(${JSON.stringify(NotificationCode)});\nexport const NotificationType = Object.freeze(${JSON.stringify(NotificationType)});\n`
  return {contents: source.replace(/\/\/# sourceMappingURL=.*$/m, '') + constants, loader: useJs ? 'js' : 'ts'}
}

function formatDiagnostic(d: BundleDiagnostic): string {
  return `${d.file}:${d.line}:${d.column} error: ${d.message}${d.lineText ? `\n    ${d.lineText.trim()}` : ''}`
}

/**
 * Bundles a TypeScript/JavaScript entry with esbuild (ESM, platform node, target node20;
 * `r1/plugin` inlined). A build error → R1Error (exit 3) with file:line:col diagnostics.
 */
export async function bundleEntry(entry: string, options: {projectDir?: string} = {}): Promise<Bundle> {
  const projectDir = resolve(options.projectDir ?? process.cwd())
  const entryPath = isAbsolute(entry) ? entry : resolve(projectDir, entry)
  const shown = (file: string) => (isAbsolute(file) ? relative(process.cwd(), file) || file : file)
  try {
    await access(entryPath)
  } catch {
    throw new R1Error(`Plugin entry not found: ${shown(entryPath)}`, ExitCode.INVALID_CONFIG, {code: 'BUNDLE_ENTRY_MISSING', hint: 'Check the `entry` of the plugin in config.yaml.'})
  }
  const esbuild = await import('esbuild')
  const sdk = await sdkModuleSource()
  try {
    const result = await esbuild.build({
      entryPoints: [entryPath],
      absWorkingDir: projectDir,
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: 'inline',
      metafile: true,
      logLevel: 'silent',
      // bundled CommonJS dependencies may call require() for Node built-ins
      banner: {js: "import {createRequire as __r1CreateRequire} from 'node:module'; const require = __r1CreateRequire(import.meta.url);"},
      plugins: [
        {
          name: 'r1-plugin-sdk',
          setup(build) {
            build.onResolve({filter: /^r1\/plugin$/}, () => ({path: 'r1/plugin', namespace: 'r1-sdk'}))
            build.onLoad({filter: /.*/, namespace: 'r1-sdk'}, () => sdk)
          },
        },
      ],
    })
    const bytes = result.outputFiles[0].contents
    const inputs = Object.keys(result.metafile.inputs)
      .filter((input) => !input.startsWith('r1-sdk:'))
      .map((input) => resolve(projectDir, input))
    return {hash: sha256Hex(bytes), bytes, entry: entryPath, inputs}
  } catch (error) {
    const messages = (error as {errors?: Array<{text: string; location: {file: string; line: number; column: number; lineText: string} | null}>}).errors
    if (!messages) throw error
    const diagnostics: BundleDiagnostic[] = messages.map((m) => ({
      file: m.location ? shown(resolve(projectDir, m.location.file)) : shown(entryPath),
      line: m.location?.line ?? 1,
      column: (m.location?.column ?? 0) + 1,
      message: m.text,
      ...(m.location?.lineText ? {lineText: m.location.lineText} : {}),
    }))
    throw new R1Error(`Cannot bundle ${shown(entryPath)}:\n${diagnostics.map(formatDiagnostic).join('\n')}`, ExitCode.INVALID_CONFIG, {
      code: 'BUNDLE_FAILED',
      hint: 'Fix the error above; the plugin entry must be a TypeScript or JavaScript module whose default export is definePlugin({...}).',
      details: {diagnostics},
    })
  }
}

export interface BundleStoreOptions {
  /** Disk space all stored bundles may take (default 512 MiB); a put that collection cannot make room for is refused. */
  quotaBytes?: number
  /**
   * A bundle nothing references is kept this long after it was stored or last asked for (default 15 min),
   * so a deploy's upload is not collected before the UPDATE_CONFIG that uses it arrives.
   */
  graceMs?: number
  /** Hashes that kept pipeline versions (current, archived, history) reference: never collected. */
  referenced?: () => Iterable<string>
  /** A corrupt bundle removed, bundles collected (default: stderr). */
  onWarning?: (message: string) => void
}

export const DEFAULT_BUNDLE_QUOTA_BYTES = 512 * 1024 * 1024
export const DEFAULT_BUNDLE_GRACE_MS = 15 * 60_000

/**
 * Bundles stored by hash: `<dir>/<sha256>.mjs`. A bundle is re-hashed whenever its size or mtime is not
 * the one last verified, so `has` stays cheap and a truncated or altered file is found, removed and
 * reported missing (the next deploy uploads it again).
 */
export class BundleStore {
  readonly quotaBytes: number
  readonly graceMs: number
  private readonly verified = new Map<string, {size: number; mtimeMs: number; ino: number}>()
  /** hash → when it was last stored or asked for (ms). */
  private readonly wanted = new Map<string, number>()
  private readonly referenced: () => Iterable<string>
  private readonly onWarning: (message: string) => void

  constructor(
    readonly dir: string,
    options: BundleStoreOptions = {},
  ) {
    this.quotaBytes = options.quotaBytes ?? DEFAULT_BUNDLE_QUOTA_BYTES
    this.graceMs = options.graceMs ?? DEFAULT_BUNDLE_GRACE_MS
    this.referenced = options.referenced ?? (() => [])
    this.onWarning = options.onWarning ?? ((message) => process.stderr.write(`r1 node: ${message}\n`))
  }

  path(hash: string): string {
    if (!HASH.test(hash)) throw new R1Error(`Not a bundle hash (64 hex digits): ${hash}`, ExitCode.USAGE, {code: 'BAD_BUNDLE_HASH'})
    return join(this.dir, `${hash}.mjs`)
  }

  /** Whether an intact bundle with this hash is stored (a corrupt one is removed and reported missing). */
  has(hash: string): boolean {
    if (!HASH.test(hash)) return false
    const ok = this.verify(hash)
    if (ok) this.wanted.set(hash, Date.now())
    return ok
  }

  /** Stores bytes under their hash after checking that they hash to it and that they fit the quota. */
  async put(hash: string, bytes: Uint8Array): Promise<void> {
    const actual = sha256Hex(bytes)
    if (actual !== hash) {
      throw new R1Error(`Bundle content does not match its hash: expected ${hash}, got ${actual}`, ExitCode.REJECTED, {code: 'BUNDLE_HASH_MISMATCH', hint: 'Upload the bundle again; it was corrupted in transit.'})
    }
    if (this.has(hash)) return
    if (this.usage() + bytes.length > this.quotaBytes) {
      this.collect()
      const used = this.usage()
      if (used + bytes.length > this.quotaBytes) {
        throw new R1Error(`Bundle ${hash.slice(0, 12)}… (${mib(bytes.length)}) does not fit this node's bundle quota: ${mib(used)} of ${mib(this.quotaBytes)} used by bundles that kept pipeline versions or recent uploads need`, ExitCode.REJECTED, {
          code: 'BUNDLE_QUOTA',
          hint: 'Delete pipelines (or their archived versions) that are no longer needed, or start the node with a larger bundle quota.',
        })
      }
    }
    await mkdir(this.dir, {recursive: true})
    await writeFileAtomic(this.path(hash), bytes)
    this.wanted.set(hash, Date.now())
    this.remember(hash)
  }

  /** Bytes taken by stored bundles. */
  usage(): number {
    let total = 0
    for (const entry of this.entries()) total += entry.size
    return total
  }

  /**
   * Removes bundles that no kept pipeline version references and that were not stored or asked for
   * within the grace period (and leftovers of interrupted writes); returns the removed hashes.
   */
  collect(now = Date.now()): string[] {
    const keep = new Set(this.referenced())
    const removed: string[] = []
    let freed = 0
    for (const entry of this.entries(true)) {
      if (entry.hash && keep.has(entry.hash)) continue
      const lastWanted = Math.max(entry.mtimeMs, (entry.hash && this.wanted.get(entry.hash)) || 0)
      if (now - lastWanted < this.graceMs) continue
      try {
        rmSync(entry.file, {force: true})
      } catch {
        continue // tried again after the next change
      }
      freed += entry.size
      if (entry.hash) {
        removed.push(entry.hash)
        this.verified.delete(entry.hash)
        this.wanted.delete(entry.hash)
      }
    }
    if (removed.length > 0) this.onWarning(`removed ${removed.length} bundle(s) no kept pipeline version uses (${mib(freed)} freed)`)
    return removed
  }

  private entries(withTemp = false): Array<{hash?: string; file: string; size: number; mtimeMs: number}> {
    let names: string[]
    try {
      names = readdirSync(this.dir)
    } catch {
      return []
    }
    const out: Array<{hash?: string; file: string; size: number; mtimeMs: number}> = []
    for (const name of names) {
      const hash = name.endsWith('.mjs') ? name.slice(0, -4) : undefined
      const temp = name.startsWith('.') && name.endsWith('.tmp')
      if (!(hash && HASH.test(hash)) && !(withTemp && temp)) continue
      const file = join(this.dir, name)
      try {
        const stats = statSync(file)
        out.push({...(hash && HASH.test(hash) ? {hash} : {}), file, size: stats.size, mtimeMs: stats.mtimeMs})
      } catch {
        // removed meanwhile
      }
    }
    return out
  }

  private verify(hash: string): boolean {
    const file = this.path(hash)
    let stats: Stats
    try {
      stats = statSync(file)
    } catch {
      this.verified.delete(hash)
      return false
    }
    const known = this.verified.get(hash)
    if (known && known.size === stats.size && known.mtimeMs === stats.mtimeMs && known.ino === stats.ino) return true
    let actual: string
    try {
      actual = sha256Hex(readFileSync(file))
    } catch {
      return false
    }
    if (actual !== hash) {
      this.verified.delete(hash)
      try {
        rmSync(file, {force: true})
      } catch {
        // reported missing either way; the upload overwrites it
      }
      this.onWarning(`bundle ${hash.slice(0, 12)}… was corrupt on disk (${stats.size} bytes hashing to ${actual.slice(0, 12)}…): removed; the next deploy uploads it again`)
      return false
    }
    this.verified.set(hash, {size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino})
    return true
  }

  private remember(hash: string): void {
    try {
      const stats = statSync(this.path(hash))
      this.verified.set(hash, {size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino})
    } catch {
      this.verified.delete(hash)
    }
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}
