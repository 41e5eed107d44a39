import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {cp, mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import type {LogLevel} from '../protocol/events.js'
import {sha256Hex, type BundleStore} from './bundle.js'
import {unpackFiles} from './files-bundle.js'

/**
 * Instance work dirs on a node: each instance runs in `<data>/work/<pipeline>/<signature>/<instance>`,
 * holding a copy of the files its plugin ships. A files bundle is unpacked once per hash into
 * `<data>/files/<hash>`, where its setup command runs once (its output goes to `log`); the copy into
 * the work dir is made again only when the files change.
 */

/** Written last in an unpacked (and set up) files folder: a folder without it is redone. */
const READY = '.r1-ready'
/** Names the files bundle a work dir holds. */
const HOLDS = '.r1-files'
const SETUP_TIMEOUT_MS = 15 * 60_000

export type WorkLog = (level: LogLevel, text: string) => void

export class WorkDirs {
  private readonly unpacking = new Map<string, Promise<string>>()

  constructor(
    private readonly dataDir: string,
    private readonly bundles: BundleStore,
    /** The environment of setup commands (the instances' base environment). */
    private readonly env: Record<string, string>,
  ) {}

  pathFor(spec: {pipeline: string; signature: string; instanceId: string}): string {
    return join(this.dataDir, 'work', ...[spec.pipeline, spec.signature, spec.instanceId].map(encodeURIComponent))
  }

  /** Makes the instance's work dir hold the files of `filesHash` (none: an empty dir). */
  async prepare(spec: {pipeline: string; signature: string; instanceId: string; filesHash?: string}, log: WorkLog): Promise<string> {
    const dir = this.pathFor(spec)
    if (!spec.filesHash) {
      await mkdir(dir, {recursive: true, mode: 0o755})
      return dir
    }
    const source = await this.unpacked(spec.filesHash, log)
    if ((await readFile(join(dir, HOLDS), 'utf8').catch(() => '')) === spec.filesHash) return dir
    await rm(dir, {recursive: true, force: true})
    await cp(source, dir, {recursive: true, verbatimSymlinks: true, filter: (path) => path !== join(source, READY)})
    await writeFile(join(dir, HOLDS), spec.filesHash)
    return dir
  }

  /** Removes the work dirs of a pipeline (deleted) or of one instance. */
  async remove(pipeline: string, signature?: string, instanceId?: string): Promise<void> {
    const parts = [pipeline, ...(signature && instanceId ? [signature, instanceId] : [])].map(encodeURIComponent)
    await rm(join(this.dataDir, 'work', ...parts), {recursive: true, force: true})
  }

  private unpacked(hash: string, log: WorkLog): Promise<string> {
    let pending = this.unpacking.get(hash)
    if (!pending) {
      pending = this.unpack(hash, log).finally(() => this.unpacking.delete(hash))
      this.unpacking.set(hash, pending)
    }
    return pending
  }

  private async unpack(hash: string, log: WorkLog): Promise<string> {
    const dir = join(this.dataDir, 'files', hash)
    if (existsSync(join(dir, READY))) return dir
    await rm(dir, {recursive: true, force: true})
    await mkdir(dir, {recursive: true, mode: 0o755})
    const bytes = await readFile(this.bundles.path(hash))
    if (sha256Hex(bytes) !== hash) throw new Error(`the files bundle ${hash.slice(0, 12)}… on this node is corrupt; deploy again`)
    const header = await unpackFiles(bytes, dir)
    if (header.setup) await runSetup(header.setup, dir, this.env, log)
    await writeFile(join(dir, READY), '')
    return dir
  }
}

/** Runs a setup command in `dir` (its own process group, killed on timeout); output lines go to `log`. */
function runSetup(setup: string, dir: string, env: Record<string, string>, log: WorkLog): Promise<void> {
  const shown = setup
  log('info', `setup: ${shown}`)
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', setup], {cwd: dir, env: {...env, HOME: dir}, stdio: ['ignore', 'pipe', 'pipe'], detached: true})
    let last = ''
    const forward = (stream: NodeJS.ReadableStream, level: LogLevel) =>
      createInterface({input: stream}).on('line', (line) => {
        if (line.trim()) last = line
        log(level, line)
      })
    forward(child.stdout!, 'info')
    forward(child.stderr!, 'warn')
    const timer = setTimeout(() => {
      last = `timed out after ${SETUP_TIMEOUT_MS / 60_000} min`
      killGroup(child.pid)
    }, SETUP_TIMEOUT_MS)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`setup "${shown}" could not start: ${error.message}`))
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      killGroup(child.pid) // anything it left behind
      if (code === 0) resolve()
      else reject(new Error(`setup "${shown}" failed (${signal ?? `exit ${code}`})${last ? `: ${last}` : ''}`))
    })
  })
}

function killGroup(pid: number | undefined): void {
  if (!pid) return
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    // already gone
  }
}
