import {spawn, spawnSync} from 'node:child_process'
import {chmodSync, chownSync, constants, copyFileSync, cpSync, existsSync, lchownSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync} from 'node:fs'
import {rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join, relative, isAbsolute} from 'node:path'
import {childEntry} from './child-entry.js'

/**
 * What keeps an instance process away from the node: Node's permission model (file access limited
 * to r1's own code, the instance's run dir and, read-only, its work dir), an unprivileged user when
 * the node runs as root, its own process group, and a memory cap.
 */

export interface RunAs {
  uid: number
  gid: number
  name: string
}

/** `nobody`'s ids from /etc/passwd, else the conventional 65534. */
function nobody(): RunAs {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , uid, gid] = line.split(':')
      if (name === 'nobody' && uid && gid) return {name, uid: Number(uid), gid: Number(gid)}
    }
  } catch {
    // no passwd file (a minimal container)
  }
  return {name: 'nobody', uid: 65_534, gid: 65_534}
}

/** A user name or `uid[:gid]` from /etc/passwd (a `--run-as` value). */
export function resolveUser(user: string): RunAs {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(user)
  if (numeric) return {name: user, uid: Number(numeric[1]), gid: Number(numeric[2] ?? numeric[1])}
  if (user === 'nobody') return nobody()
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , uid, gid] = line.split(':')
    if (name === user && uid && gid) return {name, uid: Number(uid), gid: Number(gid)}
  }
  throw new Error(`No user "${user}" in /etc/passwd: give an existing user name or uid:gid`)
}

/**
 * The user instance processes run as: the one configured, else `nobody` when this process is root
 * (plugin code must never run with the node's privileges), else this process's own user (undefined).
 */
export function instanceUser(configured: string | false | undefined): RunAs | undefined {
  if (configured === false) return undefined
  if (configured) return resolveUser(configured)
  return process.getuid?.() === 0 ? nobody() : undefined
}

/**
 * Why `user` could not run an instance host (node itself, or r1's code, out of its reach, e.g. under a
 * private /root), or undefined: a real process started as that user tries both.
 */
export function runAsProblem(user: RunAs): string | undefined {
  const host = childEntry('instance-host').modulePath
  const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(host)}, require('fs').constants.R_OK)`], {uid: user.uid, gid: user.gid, cwd: '/', timeout: 15_000, encoding: 'utf8'})
  if (probe.error) return `run ${process.execPath}: ${probe.error.message}`
  if (probe.status !== 0) return `read r1's code at ${host}`
  return undefined
}

/** r1's own code an instance host loads: the folder of the host module (dist or src), package.json and every node_modules it resolves from. */
export function codeRoots(hostModule: string): string[] {
  // found once per host module: r1's own code does not move while it runs (each instance start asks)
  let roots = knownCodeRoots.get(hostModule)
  if (!roots) knownCodeRoots.set(hostModule, (roots = findCodeRoots(hostModule)))
  return [...roots]
}

const knownCodeRoots = new Map<string, string[]>()

function findCodeRoots(hostModule: string): string[] {
  const codeDir = dirname(dirname(hostModule))
  const root = dirname(codeDir)
  const roots = [codeDir, join(root, 'package.json')]
  for (let dir = root; ; dir = dirname(dir)) {
    const modules = join(dir, 'node_modules')
    if (existsSync(modules)) roots.push(modules)
    if (dirname(dir) === dir) break
  }
  // module resolution reads real paths (a symlinked node_modules, a linked package)
  return [...new Set(roots.flatMap((path) => [path, realOrSelf(path)]))]
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

/** True when `inner` is `outer` or lies below it. */
export function isWithin(inner: string, outer: string): boolean {
  const rel = relative(outer, inner)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

export interface PermissionPlan {
  read: string[]
  write: string[]
  childProcess: boolean
  /** tsx (source runs) spawns esbuild and caches in the temp dir. */
  fromSource: boolean
  user?: RunAs
}

/** Node 20 spells it --experimental-permission; Node 22.13+ --permission. */
const PERMISSION_FLAG = process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission'

/** The node flags of a contained instance host. */
export function permissionFlags(plan: PermissionPlan): string[] {
  const read = [...plan.read]
  const write = [...plan.write]
  if (plan.fromSource) {
    const cache = join(tmpdir(), `tsx-${plan.user?.uid ?? process.getuid?.() ?? 0}`)
    read.push(cache)
    write.push(cache)
  }
  const flags = [PERMISSION_FLAG, '--allow-worker', '--disable-warning=ExperimentalWarning', '--disable-warning=SecurityWarning']
  for (const path of new Set(read)) flags.push(`--allow-fs-read=${path}`)
  for (const path of new Set(write)) flags.push(`--allow-fs-write=${path}`)
  if (plan.childProcess || plan.fromSource) flags.push('--allow-child-process')
  return flags
}

/**
 * The node flags of an instance host: its heap limit and, when contained, the permission model
 * (read: r1's code, the run dir, the work dir unless it holds the data dir; write: the run dir).
 */
export function hostExecArgv(host: {entry: {modulePath: string; execArgv: string[]}; runDir: string; codeDir?: string; cwd: string; dataDir?: string; memoryCapMb?: number; contained: boolean; childProcess: boolean; user?: RunAs}): string[] {
  const execArgv = [...host.entry.execArgv]
  if (host.memoryCapMb) execArgv.push(`--max-old-space-size=${Math.max(16, Math.floor(host.memoryCapMb))}`)
  if (!host.contained) return execArgv
  const {cwd, dataDir, runDir} = host
  const cwdAllowed = cwd !== runDir && !(dataDir && (isWithin(dataDir, cwd) || isWithin(cwd, dataDir)))
  execArgv.push(
    ...permissionFlags({
      read: [...codeRoots(host.entry.modulePath), runDir, ...(host.codeDir ? [host.codeDir] : []), ...(cwdAllowed ? [cwd] : [])],
      write: [runDir],
      childProcess: host.childProcess,
      fromSource: host.entry.modulePath.endsWith('.ts'),
      user: host.user,
    }),
  )
  return execArgv
}

/**
 * The folders of one instance: its run dir (its work dir: the files its plugin ships, what it writes),
 * owned by the instance's user; and a code dir holding its copy of the bundle, owned by the node, so
 * the node never writes into a folder the instance user controls (a symlink planted there would
 * redirect the node's write).
 */
export interface InstanceDirs {
  run: string
  code: string
  user: RunAs | undefined
}

export function createInstanceDirs(user: RunAs | undefined): InstanceDirs {
  // made in the real temp folder, so the paths are real (what the permission model compares) with no lookup each
  const base = realTmpdir()
  const run = mkdtempSync(join(base, 'r1-instance-'))
  if (user) chownSync(run, user.uid, user.gid)
  const code = mkdtempSync(join(base, 'r1-code-'))
  chmodSync(code, 0o755)
  return {run, code, user}
}

let realTmp: {dir: string; real: string} | undefined

/** The temp folder with its symlinks resolved (macOS's /var → /private/var), looked up again only when TMPDIR changes. */
function realTmpdir(): string {
  const dir = tmpdir()
  if (realTmp?.dir !== dir) realTmp = {dir, real: realOrSelf(dir)}
  return realTmp.real
}

/** Copies a bundle out of the node's data dir into the instance's code dir (read-only to the instance). */
export function stageBundle(bundlePath: string, dirs: InstanceDirs): string {
  const staged = join(dirs.code, 'plugin.mjs')
  rmSync(staged, {force: true})
  copyFileSync(bundlePath, staged, constants.COPYFILE_EXCL)
  chmodSync(staged, 0o644)
  return staged
}

/** Copies the files a plugin ships into the run dir, as the instance's user (the node never walks a tree that user can change). */
export function copyFiles(filesDir: string, dirs: InstanceDirs): void {
  if (!dirs.user) {
    cpSync(filesDir, dirs.run, {recursive: true, verbatimSymlinks: true})
    return
  }
  const copy = spawnSync('cp', ['-a', '--', `${filesDir}/.`, dirs.run], {uid: dirs.user.uid, gid: dirs.user.gid, encoding: 'utf8'})
  if (copy.status !== 0) throw new Error(`cannot copy the shipped files into the instance's folder: ${(copy.stderr || copy.error?.message || `cp exited ${copy.status}`).trim()}`)
}

/**
 * Removes a tree; one the instance user owns is removed as that user (a root rm -rf could be raced into
 * following a planted symlink). Off the event loop: a plugin's work dir can be large, and the node keeps
 * answering meanwhile. Best effort, as `rm -rf` is.
 */
export async function removeTree(dir: string, user: RunAs | undefined): Promise<void> {
  if (user) await new Promise<void>((resolve) => spawn('rm', ['-rf', '--', dir], {uid: user.uid, gid: user.gid, stdio: 'ignore'}).once('error', () => resolve()).once('close', () => resolve()))
  else await rm(dir, {recursive: true, force: true})
}

/** removeTree at once, for where nothing asynchronous runs any more (the process is exiting) or the folder was just made. */
function removeTreeNow(dir: string, user: RunAs | undefined): void {
  if (user) spawnSync('rm', ['-rf', '--', dir], {uid: user.uid, gid: user.gid})
  else rmSync(dir, {recursive: true, force: true})
}

/** An instance's run dir (as its user) and code dir (the node's). */
export async function removeInstanceDirs(dirs: InstanceDirs): Promise<void> {
  await Promise.all([removeTree(dirs.run, dirs.user), removeTree(dirs.code, undefined)])
}

/** removeInstanceDirs at once (see removeTreeNow). */
export function removeInstanceDirsNow(dirs: InstanceDirs): void {
  removeTreeNow(dirs.run, dirs.user)
  removeTreeNow(dirs.code, undefined)
}

/**
 * Hands a freshly made tree to `user`: children first, the top last, while the top is 0700 and ours,
 * so the user cannot reach inside (and swap a folder for a symlink) before every chown is done.
 */
export function giveTree(dir: string, user: RunAs): void {
  chmodSync(dir, 0o700)
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, {withFileTypes: true})) {
      const path = join(folder, entry.name)
      if (entry.isDirectory()) {
        walk(path)
        chownSync(path, user.uid, user.gid)
      } else lchownSync(path, user.uid, user.gid)
    }
  }
  walk(dir)
  chownSync(dir, user.uid, user.gid)
  chmodSync(dir, 0o755)
}

/** SIGKILL to a whole process group; false when it no longer exists. */
export function killGroup(pgid: number | undefined): boolean {
  if (!pgid) return false
  try {
    process.kill(-pgid, 'SIGKILL')
    return true
  } catch {
    return false
  }
}

/** Resident memory (bytes) of every process in the given process groups, from /proc (0 where /proc is missing). */
export function groupRss(groups: Iterable<number>): number {
  const wanted = new Set(groups)
  if (wanted.size === 0) return 0
  let total = 0
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return 0
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // fields[2] is the process group; [21] the RSS in pages
      if (!wanted.has(Number(fields[2]))) continue
      const status = readFileSync(`/proc/${name}/status`, 'utf8')
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
      if (match) total += Number(match[1]) * 1024
    } catch {
      // exited while we read
    }
  }
  return total
}

/** MAX_MEMORY_MB of an instance config, or the node's default; undefined: no cap. */
export function memoryCapMb(config: Record<string, unknown>, fallback: number | undefined): number | undefined {
  const value = Number(config.MAX_MEMORY_MB)
  if (config.MAX_MEMORY_MB !== undefined && config.MAX_MEMORY_MB !== null && Number.isFinite(value) && value > 0) return value
  return fallback
}
