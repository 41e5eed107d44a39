import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {ExitCode, R1Error} from '../errors.js'

export default class Run extends BaseCommand<typeof Run> {
  static override summary = "Run a project's pipelines on the embedded runtime and print their events"
  static override description =
    'Validates config.yaml, bundles the plugins, starts a local node (throw-away data dir) and applies the pipelines. Events print as they come: pretty lines, or NDJSON with --json. Plugin logs go to stderr. Ctrl-C stops everything and exits 0.'

  static override examples = [
    '<%= config.bin %> run',
    '<%= config.bin %> run temps --dir examples/sensor-watch',
    '<%= config.bin %> run --watch',
    '<%= config.bin %> run --once --json',
    '<%= config.bin %> run --duration 10',
  ]

  static override strict = false
  static override interruptible = true

  static override args = {
    pipeline: Args.string({description: 'Pipelines to run (default: all); several may be given'}),
  }

  static override flags = {
    dir: Flags.string({char: 'd', description: 'Project folder (with config.yaml)', default: '.'}),
    duration: Flags.custom<number>({
      description: 'Stop after this many seconds',
      parse: async (input) => {
        const seconds = Number(input)
        if (!Number.isFinite(seconds) || seconds <= 0) throw new R1Error(`--duration expects a positive number of seconds, got "${input}"`, ExitCode.USAGE)
        return seconds
      },
    })(),
    once: Flags.boolean({description: 'Stop after every instance has processed once; exit 1 when a first process() fails or crashes', exclusive: ['watch']}),
    timeout: Flags.custom<number>({
      description: 'With --once: give up (exit 5) when an instance has no first result after this many seconds',
      dependsOn: ['once'],
      parse: async (input) => {
        const seconds = Number(input)
        if (!Number.isFinite(seconds) || seconds <= 0) throw new R1Error(`--timeout expects a positive number of seconds, got "${input}"`, ExitCode.USAGE)
        return seconds
      },
    })(),
    watch: Flags.boolean({char: 'w', description: 'Re-validate, re-bundle and apply what changed when config.yaml or plugin sources change'}),
    'data-dir': Flags.string({description: 'Keep the node state here instead of a throw-away folder'}),
  }

  public async run(): Promise<undefined> {
    const {argv} = await this.parse(Run)
    const json = this.jsonEnabled()
    const {validateForRun, buildForRun, ProjectRun} = await import('../runtime/project-run.js')
    const [{renderEvent}, {eventJsonLine}] = await Promise.all([import('../ui/render-event.js'), import('../ui/event-json.js')])
    const {err} = await import('../ui/colors.js')
    const {tasks, heldOutput} = await import('../ui/tasks.js')
    const validated = await validateForRun(this.flags.dir, argv as string[], {color: err.level > 0})

    // bundling and starting the node overlap: time to first payload is a budget (ARCHITECTURE.md §8)
    const building = buildForRun(validated)
    const starting = ProjectRun.start(validated.dir, {wireTexts: json, ...(this.flags['data-dir'] ? {dataDir: this.flags['data-dir']} : {})})
    building.catch(() => undefined)
    starting.catch(() => undefined)
    this.onCleanup(async () => (await starting.catch(() => undefined))?.stop())
    let built!: Awaited<typeof building>
    let run!: Awaited<typeof starting>
    let failure: Error | undefined
    // events and logs that arrive while the task list is drawn wait for it (a redraw would erase them)
    const output = heldOutput(!json && Boolean(process.stderr.isTTY))
    const step = (fn: () => Promise<void>) => async () => {
      try {
        if (!failure) await fn()
      } catch (error) {
        failure = error as Error // reported once, by the command, not also by listr
      }
    }
    await tasks(
      [
        {title: 'Bundle plugins', task: step(async () => void (built = await building))},
        {
          title: 'Start the runtime',
          task: step(async () => {
            run = await starting
            run.onEvent((event) => output.write(process.stdout, json ? eventJsonLine(event) : renderEvent(event) + '\n'))
            await run.subscribe()
          }),
        },
        {title: `Apply ${validated.pipelines.join(', ')}`, task: step(async () => void (await run.apply(built)))},
      ],
      {json},
    ).run()
    output.release()
    if (failure) throw failure
    // listening from now on: a first process() that fails right away is not missed
    const timeoutMs = this.flags.timeout === undefined ? undefined : this.flags.timeout * 1000
    const processed = this.flags.once ? run.whenAllProcessed({timeoutMs}) : undefined
    processed?.catch(() => undefined)

    const stopped = new Promise<void>((resolve) => {
      if (this.signal.aborted) resolve()
      // `r1 run --json | head`: nobody reads any more, so stop like on Ctrl-C
      process.stdout.on('error', (error: NodeJS.ErrnoException) => error.code === 'EPIPE' && resolve())
      this.signal.addEventListener('abort', () => resolve(), {once: true})
      if (this.flags.duration) setTimeout(resolve, this.flags.duration * 1000).unref()
    })
    if (this.flags.watch) {
      run.watch(
        built,
        (outcome) => {
          if (outcome.error) process.stderr.write(`${err.red('✖')} ${outcome.error.message}\n${err.dim('→ still running the last good version; fix and save to retry')}\n`)
          else this.note(err.green('✔') + ` applied: ${outcome.applied?.join(', ') || 'nothing changed'}${outcome.deleted?.length ? `; removed: ${outcome.deleted.join(', ')}` : ''}`)
        },
        () => this.note(err.dim('↻ change detected: rebuilding')),
      )
      this.note(err.dim('watching config.yaml and plugin sources (Ctrl-C to stop)'))
    } else {
      await Promise.race([run.whenStarted(), stopped])
    }
    // a failed first process(): stop first, so the error is the last thing printed (after every event)
    await Promise.race([stopped, ...(processed ? [processed] : [])]).finally(() => run.stop())
    return undefined
  }
}
