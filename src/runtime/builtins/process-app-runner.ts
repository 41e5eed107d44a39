import {spawn, type ChildProcess} from 'node:child_process'
import {connect} from 'node:net'
import {resolve} from 'node:path'
import {definePlugin, type PluginContext} from '../../plugin/define.js'
import {killGroup} from '../containment.js'
import {splitLines} from '../log-limit.js'
import type {HostApi} from '../instance-host.js'

/**
 * PROCESS_APP_RUNNER: runs any command (Python, a binary, a shell script) in its own process group.
 * COMMAND (string → `sh -c`, or argv array), CWD, ENV, RESTART_POLICY always|on-failure|no,
 * HEALTH_CHECK {TYPE: tcp|http|delay, PORT, HOST, URL, PATH, DELAY, TIMEOUT}; commands RESTART, STOP, START.
 * Each line the app prints is a log line of the instance (stdout info, stderr warn), stamped when read,
 * like any plugin's; payloads carry the app's status (APP_STATUS, PID, RESTARTS, EXIT) when it changes.
 */

type AppStatus = 'starting' | 'healthy' | 'running' | 'restarting' | 'exited' | 'stopped' | 'failed'

export interface HealthCheck {
  type: 'tcp' | 'http' | 'delay'
  host: string
  port?: number
  url?: string
  delayMs: number
  timeoutMs: number
}

/**
 * HEALTH_CHECK of an instance config, as the runner uses it. Compiled configs carry its keys
 * UPPERCASE (src/manifest/fields.ts normalizes them); lowercase ones (a raw config, a Ratio1 client) are read too.
 */
export function parseHealthCheck(config: Record<string, unknown>): HealthCheck | undefined {
  const raw = config.HEALTH_CHECK
  if (raw === undefined || raw === null || raw === false) return undefined
  const spec = (typeof raw === 'string' ? {TYPE: raw} : raw) as Record<string, unknown>
  const get = (key: 'TYPE' | 'HOST' | 'PORT' | 'URL' | 'PATH' | 'DELAY' | 'TIMEOUT') => spec[key] ?? spec[key.toLowerCase()]
  const type = String(get('TYPE') ?? '').toLowerCase()
  if (type !== 'tcp' && type !== 'http' && type !== 'delay') throw new Error(`HEALTH_CHECK TYPE must be tcp, http or delay, got "${String(get('TYPE'))}"`)
  const port = Number(get('PORT'))
  const host = String(get('HOST') ?? '127.0.0.1')
  const check: HealthCheck = {type, host, delayMs: Number(get('DELAY') ?? 1) * 1000, timeoutMs: Number(get('TIMEOUT') ?? 60) * 1000}
  if (Number.isInteger(port) && port > 0) check.port = port
  if (type === 'tcp' && check.port === undefined) throw new Error('HEALTH_CHECK tcp needs a PORT')
  if (type === 'http') {
    const path = String(get('PATH') ?? '/')
    check.url = get('URL') ? String(get('URL')) : check.port ? `http://${host}:${check.port}${path.startsWith('/') ? path : `/${path}`}` : undefined
    if (!check.url) throw new Error('HEALTH_CHECK http needs a URL or a PORT')
  }
  return check
}

function commandOf(config: Record<string, unknown>): {file: string; args: string[]} {
  const command = config.COMMAND
  if (typeof command === 'string' && command.trim()) return {file: '/bin/sh', args: ['-c', command]}
  if (Array.isArray(command) && command.length > 0 && command.every((part) => typeof part === 'string')) return {file: command[0], args: command.slice(1)}
  throw new Error('PROCESS_APP_RUNNER needs COMMAND: a shell command string or an argv array, e.g. "python3 app.py"')
}

function policyOf(config: Record<string, unknown>): 'always' | 'on-failure' | 'no' {
  const policy = String(config.RESTART_POLICY ?? 'on-failure')
  if (policy !== 'always' && policy !== 'on-failure' && policy !== 'no') throw new Error(`RESTART_POLICY must be always, on-failure or no, got "${policy}"`)
  return policy
}

function probeTcp(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({host, port})
    socket.setTimeout(1000)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => {
      socket.destroy()
      resolve(false)
    })
  })
}

async function probeHttp(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, {signal: AbortSignal.timeout(2000)})
    await response.body?.cancel()
    return response.status < 500
  } catch {
    return false
  }
}

export function createProcessAppRunner(host: HostApi) {
  let app: ChildProcess | undefined
  let status: AppStatus = 'starting'
  let statusChanged = true
  let restarts = 0
  let lastExit: {code: number | null; signal: string | null} | undefined
  let restartTimer: NodeJS.Timeout | undefined
  let wantRunning = true
  let context: PluginContext | undefined
  let lastStderrLine: string | undefined
  /** Failed exits in a row (reset once the app has run for a while): the restart back-off. */
  let failuresInRow = 0
  let startedAt = 0

  const setStatus = (next: AppStatus) => {
    if (next !== status) statusChanged = true
    status = next
  }

  /** The one place a line of the app's output becomes a log line of the instance (the node cuts and rate-limits them per instance). */
  const logLine = (level: 'info' | 'warn' | 'error', line: string, cut = 0) => host.log(level, line, Date.now(), cut)

  async function waitHealthy(ctx: PluginContext, child: ChildProcess, check: HealthCheck): Promise<void> {
    const deadline = Date.now() + check.timeoutMs
    if (check.type === 'delay') {
      await new Promise((resolve) => setTimeout(resolve, check.delayMs))
    } else {
      for (;;) {
        if (app !== child || child.exitCode !== null || child.signalCode !== null || ctx.signal.aborted) return
        const ok = check.type === 'tcp' ? await probeTcp(check.host, check.port!) : await probeHttp(check.url!)
        if (ok) break
        if (Date.now() > deadline) {
          ctx.notify({type: 'ABNORMAL FUNCTIONING', message: `Health check ${check.type} not passing after ${check.timeoutMs / 1000} s`})
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    }
    if (app !== child || child.exitCode !== null || child.signalCode !== null) return
    setStatus('healthy')
    ctx.notify({message: `App healthy (${check.type})`})
  }

  function start(ctx: PluginContext): void {
    const config = ctx.config as Record<string, unknown>
    const {file, args} = commandOf(config)
    const env: Record<string, string> = {...host.baseEnv}
    for (const [key, value] of Object.entries((config.ENV ?? {}) as Record<string, unknown>)) env[key] = typeof value === 'string' ? value : JSON.stringify(value)
    // a relative CWD is relative to the node's work dir (the project folder under `r1 run`), the host's cwd
    const child = spawn(file, args, {cwd: config.CWD ? resolve(String(config.CWD)) : undefined, env, detached: true, stdio: ['ignore', 'pipe', 'pipe']})
    app = child
    startedAt = Date.now()
    lastStderrLine = undefined
    setStatus('starting')
    if (child.pid) host.trackGroup(child.pid)
    // bounded: of a line without an end only the first MAX_LINE_CHARS are kept
    splitLines(child.stdout!, (line, cut) => logLine('info', line, cut))
    splitLines(child.stderr!, (line, cut) => {
      if (line.trim()) lastStderrLine = line
      logLine('warn', line, cut)
    })
    child.once('error', (error) => {
      lastStderrLine = `failed to start: ${error.message}`
      logLine('error', lastStderrLine)
    })
    child.once('spawn', () => {
      if (restarts > 0) host.appUp()
      const check = parseHealthCheck(config)
      if (check) void waitHealthy(ctx, child, check)
      else setStatus('running')
    })
    // the leader is gone: so is its group (background children would hold the output pipes open, and 'close' with them)
    child.once('exit', () => child.pid && killGroup(child.pid))
    child.once('close', (code, signal) => {
      // what the app left behind in its group (`cmd &` in a script) goes with it, or it piles up across restarts
      if (child.pid) {
        killGroup(child.pid)
        host.untrackGroup(child.pid)
      }
      if (app !== child) return
      app = undefined
      lastExit = {code, signal}
      const failed = code !== 0
      if (!wantRunning) {
        setStatus('stopped')
        return
      }
      const policy = policyOf(config)
      const again = policy === 'always' || (policy === 'on-failure' && failed)
      ctx.notify({type: failed ? 'ABNORMAL FUNCTIONING' : 'NORMAL', message: `App exited (${signal ? `signal ${signal}` : `code ${code}`})${again ? ', restarting' : ''}`, info: {EXIT_CODE: code, SIGNAL: signal}})
      const {baseMs, capMs} = host.restartBackoff
      // an app that ran for a while before failing starts its back-off over
      if (Date.now() - startedAt > Math.max(capMs, 60_000)) failuresInRow = 0
      if (failed) failuresInRow++
      const delay = Math.min(baseMs * 2 ** Math.max(0, failuresInRow - 1), capMs)
      const error = `app exited with ${signal ? `signal ${signal}` : `code ${code}`}${lastStderrLine ? `: ${lastStderrLine.slice(0, 500)}` : ''}`
      if (failed) host.appCrashed(error, again ? delay : undefined)
      if (!again) {
        setStatus(failed ? 'failed' : 'exited')
        return
      }
      setStatus('restarting')
      restarts++
      restartTimer = setTimeout(() => {
        restartTimer = undefined
        if (wantRunning && !ctx.signal.aborted) start(ctx)
      }, delay)
    })
  }

  async function kill(graceMs: number): Promise<void> {
    if (restartTimer) clearTimeout(restartTimer)
    restartTimer = undefined
    const child = app
    if (!child || !child.pid || child.exitCode !== null || child.signalCode !== null) return
    const closed = new Promise((resolve) => child.once('close', resolve))
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal)
      } catch {
        // the group is already gone
      }
    }
    signalGroup('SIGTERM')
    const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs)
    await closed
    clearTimeout(timer)
    // the leader is gone; members that ignored SIGTERM go now
    signalGroup('SIGKILL')
  }

  // the app gets a little less than the instance's own SHUTDOWN_TIMEOUT, so the host is not killed first
  const graceOf = (ctx: PluginContext) => Math.max(100, Number((ctx.config as Record<string, unknown>).SHUTDOWN_TIMEOUT ?? 5) * 1000 * 0.8)

  return definePlugin({
    init(ctx) {
      context = ctx
      commandOf(ctx.config)
      policyOf(ctx.config)
      parseHealthCheck(ctx.config)
      start(ctx)
    },
    async config(ctx, next) {
      commandOf(next)
      policyOf(next)
      parseHealthCheck(next)
      const prev = ctx.config as Record<string, unknown>
      const restartNeeded = ['COMMAND', 'CWD', 'ENV', 'HEALTH_CHECK'].some((key) => JSON.stringify(prev[key]) !== JSON.stringify(next[key]))
      if (restartNeeded && wantRunning) {
        await kill(graceOf(ctx))
        // start with the new config once the runner has swapped it in
        setImmediate(() => context && wantRunning && !app && start(context))
      }
    },
    // a status payload when the status changed since the last call (the app's lines are log lines)
    process() {
      if (!statusChanged) return undefined
      statusChanged = false
      const payload: Record<string, unknown> = {APP_STATUS: status, PID: app?.pid ?? null, RESTARTS: restarts}
      if (lastExit && !app) payload.EXIT = {CODE: lastExit.code, SIGNAL: lastExit.signal}
      return payload
    },
    async command(ctx, name) {
      switch (name.toUpperCase()) {
        case 'RESTART':
          wantRunning = true
          await kill(graceOf(ctx))
          start(ctx)
          return {APP_STATUS: status, PID: app?.pid ?? null}
        case 'STOP':
          wantRunning = false
          await kill(graceOf(ctx))
          setStatus('stopped')
          return {APP_STATUS: status}
        case 'START':
          wantRunning = true
          if (!app) start(ctx)
          return {APP_STATUS: status, PID: app?.pid ?? null}
        default:
          throw new Error(`Unknown command "${name}" (PROCESS_APP_RUNNER knows RESTART, STOP, START)`)
      }
    },
    async close(ctx) {
      wantRunning = false
      await kill(graceOf(ctx))
    },
  })
}
