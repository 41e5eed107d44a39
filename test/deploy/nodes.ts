// Real `r1 node start` processes and CLI runs for the deploy/manage end-to-end tests and the bench.
import {type ChildProcess, spawn} from 'node:child_process'
import {appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {execa} from 'execa'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
export const bin = join(repoRoot, 'bin/run.js')

export interface RunResult {
  exitCode: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON (undefined when it is not JSON). */
  json: any
}

/** Runs the built CLI (bin/run.js) to completion; never throws on a non-zero exit. */
export async function r1(args: string[], options: {env?: Record<string, string>; cwd?: string; timeoutMs?: number} = {}): Promise<RunResult> {
  const result = await execa(process.execPath, [bin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: {NO_COLOR: '1', CI: '1', ...options.env},
    reject: false,
    stdin: 'ignore',
    timeout: options.timeoutMs ?? 60_000,
  })
  let json: unknown
  try {
    json = JSON.parse(result.stdout)
  } catch {
    json = undefined
  }
  return {exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr, json}
}

export interface NodeProcess {
  url: string
  address: string
  alias: string
  dataDir: string
  child: ChildProcess
  stop(): Promise<void>
}

/** A temp folder for one test file; `dispose()` removes it. */
export function tempRoot(prefix = 'r1-deploy-'): {dir: string; dispose(): void} {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return {dir, dispose: () => rmSync(dir, {recursive: true, force: true})}
}

/** A CLI identity in its own config dir (R1_CONFIG_DIR); returns the env to pass and the address. */
export async function cliIdentity(root: string, name = 'cli'): Promise<{env: Record<string, string>; address: string}> {
  const configDir = join(root, name)
  mkdirSync(configDir, {recursive: true})
  const env = {R1_CONFIG_DIR: configDir}
  const generated = await r1(['keys', 'generate', '--json'], {env})
  if (generated.exitCode !== 0) throw new Error(`r1 keys generate failed: ${generated.stderr}${generated.stdout}`)
  const address = generated.json?.address ?? generated.json?.identity?.address
  if (typeof address !== 'string') throw new Error(`r1 keys generate --json gave no address: ${generated.stdout}`)
  return {env, address}
}

/** A self-signed P-256 certificate for 127.0.0.1/localhost (openssl). */
export async function selfSignedCert(dir: string): Promise<{cert: string; key: string}> {
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  await execa('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], {stdin: 'ignore'})
  return {cert, key}
}

/**
 * Starts `r1 node start --port 0` as its own process, after putting `allow` on its allow-list;
 * resolves with the `{address, url, alias}` line it prints.
 */
export async function startNode(options: {dataDir: string; allow?: string[]; tls?: {cert: string; key: string}; env?: Record<string, string>; extraArgs?: string[]}): Promise<NodeProcess> {
  mkdirSync(options.dataDir, {recursive: true})
  for (const address of options.allow ?? []) {
    const allowed = await r1(['node', 'allow', address, '--data-dir', options.dataDir], {env: options.env})
    if (allowed.exitCode !== 0) throw new Error(`r1 node allow failed: ${allowed.stderr}`)
  }
  const args = ['node', 'start', '--json', '--port', '0', '--host', '127.0.0.1', '--data-dir', options.dataDir, ...(options.tls ? ['--tls-cert', options.tls.cert, '--tls-key', options.tls.key] : []), ...(options.extraArgs ?? [])]
  const {child, line: info, stop} = await spawnFirstJsonLine<{address: string; url: string; alias: string}>(args, options.env)
  return {...info, dataDir: options.dataDir, child, stop}
}

/**
 * Spawns the built CLI with `args` (a long-running command under --json) and resolves with the first
 * JSON line it prints; `stop()` sends SIGTERM and waits (SIGKILL after 10 s).
 */
export async function spawnFirstJsonLine<T>(args: string[], env?: Record<string, string>): Promise<{child: ChildProcess; line: T; stop(): Promise<void>}> {
  const child = spawn(process.execPath, [bin, ...args], {cwd: repoRoot, env: {...process.env, NO_COLOR: '1', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr!.on('data', (chunk) => (stderr += chunk))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const line = await new Promise<T>((resolve, reject) => {
    let buffered = ''
    const timer = setTimeout(() => reject(new Error(`r1 ${args.slice(0, 2).join(' ')} printed nothing in 30s: ${stderr}`)), 30_000)
    child.stdout!.on('data', (chunk) => {
      buffered += chunk
      const found = buffered.split('\n').find((l) => l.trim().startsWith('{'))
      if (!found) return
      clearTimeout(timer)
      try {
        resolve(JSON.parse(found))
      } catch (error) {
        reject(error)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`r1 ${args.slice(0, 2).join(' ')} exited ${code}: ${stderr}`))
    })
  })
  return {
    child,
    line,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * Two real nodes (edge-a, edge-b) that allow `address`, and a copy of the `basic` fixture project under
 * `root` naming them as targets, deployed to both with the built CLI.
 */
export async function deployedBasicProject(root: string, address: string, env: Record<string, string>): Promise<{project: string; nodes: NodeProcess[]}> {
  const project = join(root, 'project')
  const nodes = await Promise.all(['a', 'b'].map((n) => startNode({dataDir: join(root, `node-${n}`), allow: [address]})))
  cpSync(fileURLToPath(new URL('../fixtures/projects/basic', import.meta.url)), project, {recursive: true})
  appendFileSync(join(project, 'config.yaml'), `targets:\n${nodes.map((n, i) => `  edge-${'ab'[i]}: { url: "${n.url}", address: "${n.address}" }\n`).join('')}`)
  const deployed = await r1(['deploy', '--all', '--json', '--dir', project], {env})
  if (deployed.exitCode !== 0) throw new Error(`deploy of the basic project failed: ${deployed.stderr}${deployed.stdout}`)
  return {project, nodes}
}
