import {chownSync, copyFileSync, cpSync, existsSync, lchownSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, dirname, join, relative, isAbsolute} from 'node:path'

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

/** r1's own code an instance host loads: the folder of the host module (dist or src), package.json and every node_modules it resolves from. */
export function codeRoots(hostModule: string): string[] {
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
export function hostExecArgv(host: {entry: {modulePath: string; execArgv: string[]}; runDir: string; cwd: string; dataDir?: string; memoryCapMb?: number; contained: boolean; childProcess: boolean; user?: RunAs}): string[] {
  const execArgv = [...host.entry.execArgv]
  if (host.memoryCapMb) execArgv.push(`--max-old-space-size=${Math.max(16, Math.floor(host.memoryCapMb))}`)
  if (!host.contained) return execArgv
  const {cwd, dataDir, runDir} = host
  const cwdAllowed = cwd !== runDir && !(dataDir && (isWithin(dataDir, cwd) || isWithin(cwd, dataDir)))
  execArgv.push(
    ...permissionFlags({
      read: [...codeRoots(host.entry.modulePath), runDir, ...(cwdAllowed ? [cwd] : [])],
      write: [runDir],
      childProcess: host.childProcess,
      fromSource: host.entry.modulePath.endsWith('.ts'),
      user: host.user,
    }),
  )
  return execArgv
}

/** A private run dir for one instance (its bundle copy, files it writes), owned by the instance's user. */
export function createRunDir(user: RunAs | undefined): string {
  const dir = realOrSelf(mkdtempSync(join(tmpdir(), 'r1-instance-')))
  if (user) chownSync(dir, user.uid, user.gid)
  return dir
}

/** Copies a bundle out of the node's data dir into the run dir, readable by the instance's user. */
export function stageBundle(bundlePath: string, runDir: string, user: RunAs | undefined): string {
  const staged = join(runDir, 'plugin.mjs')
  copyFileSync(bundlePath, staged)
  if (user) chownSync(staged, user.uid, user.gid)
  return staged
}

/** Copies the files a plugin ships into the run dir (its work dir), owned by the instance's user. */
export function copyFiles(filesDir: string, runDir: string, user: RunAs | undefined): void {
  cpSync(filesDir, runDir, {recursive: true, verbatimSymlinks: true, filter: (path) => basename(path) !== '.r1-ready'})
  if (user) chownTree(runDir, user)
}

/** chown -R (symlinks themselves, not what they point at). */
export function chownTree(dir: string, user: RunAs): void {
  chownSync(dir, user.uid, user.gid)
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) chownTree(path, user)
    else lchownSync(path, user.uid, user.gid)
  }
}

export function removeRunDir(dir: string | undefined): void {
  if (dir) rmSync(dir, {recursive: true, force: true})
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
