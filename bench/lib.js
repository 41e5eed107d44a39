// Shared helpers for `npm run bench`: every figure is reported next to a baseline measured in the same run.
import {spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const root = fileURLToPath(new URL('..', import.meta.url))
export const r1 = fileURLToPath(new URL('../bin/run.js', import.meta.url))

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Median wall time in ms of a command, over `runs` runs after one warm-up. */
export function wallMedian(command, args, {runs = 15, cwd = root, expectStatus = 0} = {}) {
  const times = []
  for (let i = 0; i <= runs; i++) {
    const start = process.hrtime.bigint()
    const result = spawnSync(command, args, {cwd, stdio: ['ignore', 'pipe', 'pipe']})
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (result.status !== expectStatus) {
      throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`)
    }
    if (i > 0) times.push(ms)
  }
  return median(times)
}

/**
 * A row of the report. `ratio` is value / baseline; `budget` is the ratio (or absolute) limit and
 * `higherIsBetter` tells which side of it passes.
 */
export function row(figure, {value, unit, baseline, baselineName, budget, higherIsBetter = false, absolute = false}) {
  const ratio = baseline ? value / baseline : undefined
  const measured = absolute ? value : ratio
  const ok = budget === undefined || measured === undefined ? undefined : higherIsBetter ? measured >= budget : measured <= budget
  return {figure, value: round(value), unit, baseline: baseline === undefined ? undefined : round(baseline), baselineName, ratio: ratio === undefined ? undefined : round(ratio, 2), budget, ok}
}

function round(n, digits = 1) {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** Runs the built CLI to completion, without color and as in CI. */
export function cli(args, env) {
  return spawnSync(process.execPath, [r1, ...args], {cwd: root, env: {...process.env, NO_COLOR: '1', CI: '1', ...env}, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
}

/** A fresh CLI identity in `configDir` (`r1 keys generate`): the env that selects it and its address. */
export function cliKey(configDir) {
  const env = {R1_CONFIG_DIR: configDir}
  const keys = cli(['keys', 'generate', '--json'], env)
  if (keys.status !== 0) throw new Error(`r1 keys generate failed: ${keys.stderr}`)
  return {env, address: JSON.parse(keys.stdout).address}
}

/** Starts `r1 node start --json` on 127.0.0.1:0 (plus `extraArgs`); resolves with its `{address, url, alias, cstoreUrl, r1fsUrl}` line and the child. */
export function startNode(dataDir, env, extraArgs = []) {
  return startR1(['node', 'start', '--json', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, ...extraArgs], env)
}

/** Starts a long-running r1 command under --json; resolves with the first JSON line it prints and `child`. */
export function startR1(args, env) {
  const child = spawn(process.execPath, [r1, ...args], {cwd: root, env: {...process.env, NO_COLOR: '1', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  return firstJsonLine(child, `r1 ${args.slice(0, 2).join(' ')}`)
}

/** Resolves with the first JSON line a child prints on stdout and `child`; rejects if it exits first or prints none in `timeoutMs` (60 s). */
export function firstJsonLine(child, name, timeoutMs = 60_000) {
  let stderr = ''
  child.stderr?.on('data', (chunk) => (stderr += chunk))
  return new Promise((resolve, reject) => {
    let buffered = ''
    const timer = setTimeout(() => reject(new Error(`${name} printed nothing in ${timeoutMs / 1000}s: ${stderr}`)), timeoutMs)
    child.stdout.on('data', (chunk) => {
      buffered += chunk
      // whole lines only: a long one comes in several chunks
      const line = buffered.split('\n').slice(0, -1).find((l) => l.trim().startsWith('{'))
      if (!line) return
      clearTimeout(timer)
      resolve({...JSON.parse(line), child})
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited ${code}: ${stderr}`))
    })
  })
}

/**
 * Starts `count` nodes under `dir` (`node-0`, …) that allow `address`, a few at a time (many node start-ups
 * at once on a small machine time out for no good reason). Each is pushed to `into` as soon as it is up, so
 * the caller's `finally` stops it even if a sibling fails.
 */
export async function startAllowedNodes(dir, count, address, env, into) {
  for (let i = 0; i < count; i++) {
    const dataDir = join(dir, `node-${i}`)
    mkdirSync(dataDir)
    const allowed = cli(['node', 'allow', address, '--data-dir', dataDir], env)
    if (allowed.status !== 0) throw new Error(`r1 node allow failed: ${allowed.stderr}`)
  }
  for (let i = 0; i < count; i += 6) {
    const batch = []
    for (let j = i; j < Math.min(count, i + 6); j++) batch.push(startNode(join(dir, `node-${j}`), env).then((n) => into.push(n)))
    await Promise.all(batch)
  }
}

/** Stops a child with `signal`, then SIGKILL after 10 s. */
export async function stopChild(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

/** The address of simulated node `i` in the fleet bench: `0xai_` and 44 characters, like a real one. */
export function simulatedAddress(i) {
  return `0xai_A${createHash('sha256').update(`r1-bench-node-${i}`).digest('base64url')}`
}
