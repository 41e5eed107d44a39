import {setMaxListeners} from 'node:events'
import {Command, Flags, type Interfaces} from '@oclif/core'
import type {ChalkInstance} from 'chalk'
import {ExitCode, R1Error, exitCodeOf} from './errors.js'
import type {FleetResult} from './fleet/result.js'
import {closest} from './manifest/diagnostics.js'
import {type ErrorJson, errorJson, errorText} from './ui/error-report.js'

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/** `--data-dir` of the `r1 node` commands (the node's key, allow-list, pipelines and journal). */
export const nodeDataDirFlag = {
  'data-dir': Flags.string({description: 'Node state directory [default: $XDG_DATA_HOME/r1/node or ~/.local/share/r1/node].'}),
}

/** `--data-dir` of the `r1 broker` commands (the broker's users). */
export const brokerDataDirFlag = {
  'data-dir': Flags.string({description: 'Broker state directory (users.json) [default: $XDG_DATA_HOME/r1/broker or ~/.local/share/r1/broker].'}),
}

/** Flags that choose nodes: deploy, the managing commands and `r1 logs` share them. */
export const targetFlags = {
  target: Flags.string({char: 't', description: 'Named target from config.yaml `targets` (repeatable)', multiple: true}),
  node: Flags.string({description: 'Ad hoc node URL (ws:// or wss://), with --address (repeatable)', multiple: true}),
  address: Flags.string({description: 'The address expected at each --node (0xai_…)', multiple: true}),
  all: Flags.boolean({description: 'Every target in config.yaml'}),
  exclude: Flags.string({description: 'Leave this target out (repeatable)', multiple: true}),
  tag: Flags.string({description: 'Only nodes carrying this tag, as name=value (repeatable: every one must match): config.yaml `tags` of targets, or with --broker the R1_TAGS nodes announce', multiple: true, helpValue: '<name=value>'}),
  env: Flags.string({description: "An environment of config.yaml `environments`: its targets (and, for deploy, its config overrides)"}),
  dir: Flags.string({char: 'd', description: 'Project folder (holds config.yaml)', default: '.'}),
  'connect-timeout': Flags.integer({description: 'Seconds to connect to a node (each request to it may take this long too, at least 30)', default: 10, min: 1}),
  ca: Flags.string({description: 'PEM file of a CA (or self-signed certificate) to trust for wss:// nodes'}),
  broker: Flags.string({description: 'Reach nodes through this MQTT broker: a URL (mqtt://, mqtts://, ws://, wss://) or a name under `brokers` in config.yaml; with --address, or --all for every node heard on it', helpValue: '<url|name>'}),
  discover: Flags.integer({description: 'With --broker and no --address: seconds to listen for node heartbeats', default: 11, min: 1}),
}

/** Target flags plus the fan-out and confirmation limits: every fleet command (deploy, status, command, restart, rollback, pipelines …). */
export const fleetFlags = {
  ...targetFlags,
  'max-concurrent': Flags.integer({description: 'Targets handled at once (default 8, or 256 when every target is reached through a broker)', min: 1}),
  'wait-timeout': Flags.integer({description: 'Seconds to wait for the node to confirm', default: 60, min: 1}),
}

/**
 * Every r1 command extends this: parsing in `init`, `--json` (the typed return value is the one
 * document on stdout), errors mapped to exit codes (also under `--json`), SIGINT cleanup.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    json: Flags.boolean({description: 'Print one JSON document (NDJSON for streams) on stdout and nothing else.', helpGroup: 'GLOBAL'}),
  }

  /** Commands that end by themselves on Ctrl-C (streams, `run`) set this and watch `this.signal`. */
  static interruptible = false

  /** Set by a command that, from then on, handles Ctrl-C itself by watching `this.signal` (a rollout). */
  protected handlesInterrupt = false
  protected flags!: CommandFlags<T>
  protected args!: CommandArgs<T>
  private readonly interrupt = interruptController()
  private readonly cleanups: Array<() => unknown | Promise<unknown>> = []
  private readonly onSignal = (signal: NodeJS.Signals) => void this.handleSignal(signal)

  /** Aborted on the first SIGINT/SIGTERM. */
  protected get signal(): AbortSignal {
    return this.interrupt.signal
  }

  /** Registers work to undo or close on exit, including Ctrl-C (run last-in first-out). */
  protected onCleanup(fn: () => unknown | Promise<unknown>): void {
    this.cleanups.push(fn)
  }

  public override async init(): Promise<void> {
    await super.init()
    process.on('SIGINT', this.onSignal)
    process.on('SIGTERM', this.onSignal)
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as CommandFlags<T>
    this.args = args as CommandArgs<T>
  }

  /** Progress and notes for humans: stderr, silent under `--json`. */
  protected note(message: string): void {
    if (!this.jsonEnabled()) process.stderr.write(message + '\n')
  }

  /**
   * Ends a fleet command the one way: under `--json` the result is the document; else `lines` (given the
   * stdout colors) go to stdout and one failure summary, built from the per-node outcomes, to stderr.
   * The exit code is the result's.
   */
  protected async finishFleet<R extends FleetResult>(what: string, result: R, lines: (color: ChalkInstance) => string[] | string): Promise<R> {
    if (!this.jsonEnabled()) {
      const [{out, err}, {failureText}, {failureOf, statusCounts}] = await Promise.all([import('./ui/colors.js'), import('./deploy/render.js'), import('./fleet/result.js')])
      const text = lines(out)
      const body = typeof text === 'string' ? text : text.join('\n') + '\n'
      process.stdout.write(body)
      // a report of several targets ends with how many ended how (stderr: stdout is the report a script may read)
      if (result.targets.length > 1) process.stderr.write(err.dim(`${result.targets.length} targets: ${statusCounts(result.targets.map((t) => t.status))}`) + '\n')
      const failure = failureOf(what, result.targets, result.exitCode)
      if (failure) process.stderr.write(failureText(failure, err))
    }
    process.exitCode = result.exitCode
    return result
  }

  public override logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n')
  }

  protected override toErrorJson(error: unknown): ErrorJson {
    return errorJson(error)
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<void> {
    error = this.withFlagSuggestion(error)
    process.exitCode = exitCodeOf(error)
    if (this.jsonEnabled()) this.logJson(this.toErrorJson(error))
    else process.stderr.write(errorText(error))
  }

  protected override async finally(error: Error | undefined): Promise<void> {
    process.off('SIGINT', this.onSignal)
    process.off('SIGTERM', this.onSignal)
    await this.runCleanups()
    await super.finally(error)
  }

  /** oclif's "Nonexistent flag: --forse" as a usage error that suggests the flag meant (`--force`). */
  private withFlagSuggestion(error: Error): Error {
    const unknown = (error as {flags?: unknown}).flags
    if (!/^Nonexistent flags?:/.test(error.message) || !Array.isArray(unknown)) return error
    const ctor = this.ctor as typeof BaseCommand
    const known = Object.entries({...ctor.baseFlags, ...ctor.flags}).flatMap(([name, flag]) => [`--${name}`, ...((flag as {char?: string}).char ? [`-${(flag as {char?: string}).char}`] : [])])
    const suggestions = (unknown as string[]).map((flag) => ({flag, guess: closest(flag.split('=')[0], known)}))
    const said = suggestions.map(({flag, guess}) => `${flag}${guess ? ` (did you mean ${guess}?)` : ''}`)
    return new R1Error(`Unknown flag${unknown.length === 1 ? '' : 's'}: ${said.join(', ')}`, ExitCode.USAGE, {
      code: 'UNKNOWN_FLAG',
      hint: `\`${['r1', ...(this.id ?? '').split(':').filter(Boolean)].join(' ')} --help\` lists every flag.`,
      details: {flags: unknown, suggestions: Object.fromEntries(suggestions.filter((s) => s.guess).map((s) => [s.flag, s.guess]))},
    })
  }

  private async runCleanups(): Promise<void> {
    while (this.cleanups.length > 0) {
      const fn = this.cleanups.pop()!
      try {
        await fn()
      } catch (error) {
        process.stderr.write(`cleanup failed: ${(error as Error).message}\n`)
      }
    }
  }

  private async handleSignal(signal: NodeJS.Signals): Promise<void> {
    if (this.interrupt.signal.aborted) process.exit(ExitCode.INTERRUPTED) // second Ctrl-C: leave now
    this.interrupt.abort(new R1Error(`Interrupted (${signal})`, ExitCode.INTERRUPTED, {code: 'INTERRUPTED'}))
    if ((this.ctor as typeof BaseCommand).interruptible || this.handlesInterrupt) return
    await this.runCleanups()
    process.exit(ExitCode.INTERRUPTED)
  }
}

/** Ctrl-C's signal: every target in flight listens to it (a fleet command has hundreds at once), which is no leak to warn of. */
function interruptController(): AbortController {
  const controller = new AbortController()
  setMaxListeners(0, controller.signal)
  return controller
}
