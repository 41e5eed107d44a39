import {spawn} from 'node:child_process'
import {createHash, randomUUID} from 'node:crypto'
import {chmod, lstat, mkdir, readFile, rename, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {Readable} from 'node:stream'
import type {LogLevel} from '../protocol/events.js'
import {sha256Hex, type BundleStore} from './bundle.js'
import {giveTree, killGroup, removeTree, type RunAs} from './containment.js'
import {splitLines} from './log-limit.js'
import {unpackFiles} from './files-bundle.js'

/**
 * The files plugins ship, on a node: a files bundle is unpacked once per hash into
 * `<files root>/<hash>`, owned by the instance user, where its setup command runs once, as that
 * user (its output goes to `log`). Each instance then gets a copy in its own run dir (supervisor).
 * The root lies outside the node's data dir, which instances may never read; by default it is in
 * the temp dir, named after the data dir, so it outlives node restarts (not reboots).
 */

const SETUP_TIMEOUT_MS = 15 * 60_000
/** How long a finished setup's output is still read when something outside its group holds the pipes. */
const SETUP_DRAIN_MS = 2000

/** A line of a setup's output; `cut`: characters cut from it (a line is kept to MAX_LINE_CHARS as it is read). */
export type WorkLog = (level: LogLevel, text: string, cut?: number) => void

export function defaultFilesRoot(dataDir: string): string {
  return join(tmpdir(), `r1-files-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`)
}

export class ShippedFiles {
  private readonly unpacking = new Map<string, Promise<string>>()

  constructor(
    readonly root: string,
    private readonly bundles: BundleStore,
    /** The environment of setup commands (the instances' base environment). */
    private readonly env: Record<string, string>,
    /** Who runs the setup and owns the files (the instance user; undefined: this process's user). Asked when needed: an unknown user fails the instances, not the node. */
    private readonly user: () => RunAs | undefined,
  ) {}

  pathFor(hash: string): string {
    return join(this.root, hash)
  }

  /** The folder holding the files of `hash`, unpacked and set up (once; concurrent callers share the work). */
  prepare(hash: string, log: WorkLog): Promise<string> {
    let pending = this.unpacking.get(hash)
    if (!pending) {
      pending = this.unpack(hash, log).finally(() => this.unpacking.delete(hash))
      this.unpacking.set(hash, pending)
    }
    return pending
  }

  private async unpack(hash: string, log: WorkLog): Promise<string> {
    await this.ensureRoot()
    const dir = this.pathFor(hash)
    // the marker lives beside the folder, in the root only the node writes to: the instance user, who
    // owns the folder, can neither forge it nor turn it into a symlink the node would write through
    const ready = `${dir}.ready`
    if ((await readFile(ready, 'utf8').catch(() => undefined)) === hash) return dir
    const user = this.user()
    // a folder left by an unfinished unpack or setup: moved aside atomically, removed as its owner
    const stale = join(this.root, `.stale-${randomUUID()}`)
    if (await rename(dir, stale).then(() => true, () => false)) await removeTree(stale, user)
    const bytes = await readFile(this.bundles.path(hash))
    if (sha256Hex(bytes) !== hash) throw new Error(`the files bundle ${hash.slice(0, 12)}… on this node is corrupt; deploy again`)
    const fresh = join(this.root, `.unpack-${randomUUID()}`)
    await mkdir(fresh, {mode: 0o700})
    const header = await unpackFiles(bytes, fresh)
    if (user) giveTree(fresh, user)
    else await chmod(fresh, 0o755)
    await rename(fresh, dir)
    if (header.setup) await runSetup(header.setup, dir, this.env, user, log)
    await writeFile(ready, hash, {mode: 0o644})
    return dir
  }

  /** The root is ours alone: a folder someone else made (or a symlink) in the temp dir is refused. */
  private async ensureRoot(): Promise<void> {
    await mkdir(this.root, {recursive: true, mode: 0o711})
    const info = await lstat(this.root)
    const uid = process.getuid?.()
    if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o022) !== 0) {
      throw new Error(`${this.root} is not a private folder of this node (owner ${info.uid}, mode ${(info.mode & 0o777).toString(8)}); remove it or start the node with another --data-dir`)
    }
  }
}

/** Runs a setup shell line in `dir` as `user` (its own process group, killed on timeout); output lines go to `log`. */
function runSetup(setup: string, dir: string, env: Record<string, string>, user: RunAs | undefined, log: WorkLog): Promise<void> {
  log('info', `setup: ${setup}`)
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', setup], {cwd: dir, env: {...env, HOME: dir}, stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...(user ? {uid: user.uid, gid: user.gid} : {})})
    let last = ''
    let timedOut = false
    let drainTimer: NodeJS.Timeout | undefined
    const forward = (stream: Readable, level: LogLevel) =>
      splitLines(stream, (line, cut) => {
        if (line.trim()) last = line
        log(level, line, cut)
      })
    forward(child.stdout!, 'info')
    forward(child.stderr!, 'warn')
    // the output is read no longer: 'close' follows at once
    const stopReading = () => {
      child.stdout!.destroy()
      child.stderr!.destroy()
    }
    const timer = setTimeout(() => {
      timedOut = true
      killGroup(child.pid)
      stopReading()
    }, SETUP_TIMEOUT_MS)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`setup "${setup}" could not start: ${error.message}`))
    })
    child.once('exit', () => {
      // the shell is gone: so is what it left in its group, which would hold the output pipes open; what
      // left the group (setsid) and holds them still is not waited for past a moment
      killGroup(child.pid)
      drainTimer = setTimeout(stopReading, SETUP_DRAIN_MS)
    })
    // settled once its output is read to the end: the last line is the reason a failed setup gives
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(drainTimer)
      if (timedOut) reject(new Error(`setup "${setup}" timed out after ${SETUP_TIMEOUT_MS / 60_000} min${last ? `: ${last.slice(0, 500)}` : ''}`))
      else if (code === 0) resolve()
      else reject(new Error(`setup "${setup}" failed (${signal ?? `exit ${code}`})${last ? `: ${last.slice(0, 500)}` : ''}`))
    })
  })
}
