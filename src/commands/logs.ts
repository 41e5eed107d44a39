import {Flags} from '@oclif/core'
import {BaseCommand, targetFlags} from '../base-command.js'
import {ExitCode, R1Error} from '../errors.js'
import {EventType} from '../protocol/events.js'
import {EventLevel} from '../protocol/filter.js'

export default class Logs extends BaseCommand<typeof Logs> {
  static override summary = 'Show payloads, notifications, plugin logs and heartbeats of one or many nodes; --follow streams them live'
  static override description =
    'History first (the last --tail events, or everything after --since), then, with --follow, live events. Filters run on the node. Several nodes merge into one stream, each line labelled with its node. A dropped connection is resumed after the last sequence number seen: nothing is lost or shown twice, and events the node no longer holds are reported as a gap. A node that is down is reported on stderr and retried while the others stream. Ctrl-C ends with exit 0.'

  static override examples = [
    '<%= config.bin %> logs --follow',
    '<%= config.bin %> logs --all --type notification --level warn --since 1h',
    '<%= config.bin %> logs -t edge-a --type log --level warn --follow',
    '<%= config.bin %> logs -t edge-a --pipeline temps --instance monitor-1 --tail 50',
    '<%= config.bin %> logs --node ws://127.0.0.1:7443 --address 0xai_… --follow --json',
  ]

  static override interruptible = true

  static override flags = {
    ...targetFlags,
    follow: Flags.boolean({char: 'f', description: 'Keep streaming live events after the history'}),
    type: Flags.string({description: 'Only these event types (repeatable)', options: EventType.map((t) => t.toLowerCase()), multiple: true}),
    pipeline: Flags.string({char: 'p', description: 'Only events of this pipeline'}),
    instance: Flags.string({char: 'i', description: 'Only events of this instance (INSTANCE_ID)'}),
    signature: Flags.string({char: 's', description: 'Only events of this plugin signature'}),
    level: Flags.string({description: 'Only events at or above this level (a log line has its own; warn: also abnormal and failed notifications; error: also exceptions)', options: [...EventLevel]}),
    'notification-type': Flags.string({description: 'Only notifications of this NOTIFICATION_TYPE (NORMAL, ABNORMAL FUNCTIONING, EXCEPTION)'}),
    search: Flags.string({description: 'Only events whose text contains this (case-insensitive)'}),
    since: Flags.string({description: 'Start after this seq (1200), this long ago (90s, 5m, 2h, 1d) or at this time (2026-01-31T12:00:00Z)'}),
    tail: Flags.integer({char: 'n', description: 'Start with the last N matching events per node (default 100 without --since)', min: 0}),
    'sampling-rate': Flags.custom<number>({
      description: 'Show this fraction (0..1] of payloads; notifications and heartbeats always show',
      parse: async (input) => {
        const rate = Number(input)
        if (!(rate > 0 && rate <= 1)) throw new R1Error(`--sampling-rate expects a number in (0, 1], got "${input}"`, ExitCode.USAGE, {code: 'BAD_FLAG'})
        return rate
      },
    })(),
    keepalive: Flags.integer({description: 'Seconds between pings; a connection that misses a pong is dropped and resumed', default: 10, min: 1}),
  }

  public async run(): Promise<undefined> {
    const f = this.flags
    const json = this.jsonEnabled()
    const [{selectTargets}, {cliKeyPath, requireIdentity}, {EventFilterSchema}, follow, {renderEvent}, {out, err}, {readCa}, {eventJsonLine}, {escapeControl}] = await Promise.all([
      import('../deploy/project.js'),
      import('../protocol/identity.js'),
      import('../protocol/filter.js'),
      import('../session/follow.js'),
      import('../ui/render-event.js'),
      import('../ui/colors.js'),
      import('../deploy/link.js'),
      import('../ui/event-json.js'),
      import('../ui/escape.js'),
    ])
    const filter = EventFilterSchema.parse({
      TYPES: f.type?.map((t) => t.toUpperCase()),
      PIPELINE: f.pipeline,
      INSTANCE: f.instance,
      SIGNATURE: f.signature,
      NOTIFICATION_TYPE: f['notification-type'],
      LEVEL: f.level,
      SEARCH: f.search,
    })
    const since = f.since === undefined ? undefined : follow.parseSince(f.since)
    const {readBrokerConfig} = await import('../deploy/link.js')
    const selected = await selectTargets(f.dir, {...f, everyTargetByDefault: true}, {connectTimeoutMs: f['connect-timeout'] * 1000, signal: this.signal})
    const targets = await Promise.all(selected.map(async ({broker, ...t}) => ({...t, ...(broker ? {broker: await readBrokerConfig(broker)} : {})})))
    const identity = await requireIdentity(cliKeyPath())
    const labelled = targets.length > 1
    const stop = new AbortController()
    this.signal.addEventListener('abort', () => stop.abort(), {once: true})
    const sink = new follow.LineSink(process.stdout, () => stop.abort()) // reader gone (| head): stop quietly
    const warn = (text: string) => process.stderr.write(`${err.yellow('!')} ${escapeControl(text)}\n`)

    const result = await follow.followNodes(
      {
        targets,
        identity,
        filter,
        since,
        tail: f.tail ?? (since === undefined ? 100 : undefined),
        follow: f.follow,
        samplingRate: f['sampling-rate'],
        signal: stop.signal,
        session: {pingIntervalMs: f.keepalive * 1000, connectTimeoutMs: f['connect-timeout'] * 1000, wireTexts: json, ...(f.ca ? {ca: await readCa(f.ca)} : {})},
      },
      {
        onEntry: (target, entry) => {
          if (json) return sink.write(eventJsonLine(entry, target.name))
          if (entry.EE_EVENT_TYPE !== 'R1_GAP') return sink.write(renderEvent(entry, {nodeLabel: labelled ? target.name : undefined}) + '\n')
          return sink.write(`${labelled ? out.blue(target.name) + ' ' : ''}${out.yellow(`⚠ gap: ${follow.describeGap(entry)}`)}\n`)
        },
        onNotice: (target, notice) => {
          if (notice.kind === 'unreachable') warn(`${target.name}: ${notice.message}; retrying in ${Math.round(notice.retryInMs / 100) / 10}s`)
          else if (notice.kind === 'failed') warn(`${target.name}: ${notice.message}`)
          else if (notice.kind === 'warning') warn(`${target.name}: ${notice.message}`)
          else if (notice.kind === 'connected') this.note(err.dim(escapeControl(`${target.name}: connected to ${notice.alias || target.address} (last seq ${notice.nodeLastSeq})`)))
          else if (notice.kind === 'live' && f.follow) this.note(err.dim(`${target.name}: history replayed, following live events`))
        },
      },
    )
    await sink.end()
    process.exitCode = result.exitCode
    if (!result.ok) {
      // Under --json stdout stays pure NDJSON: the per-node failures were already reported on stderr.
      if (json) return undefined
      const failed = result.targets.filter((t) => t.status !== 'ok' && t.status !== 'interrupted')
      throw new R1Error(`No logs from ${failed.map((t) => `${t.target} (${t.status})`).join(', ')}`, result.exitCode, {
        code: 'LOGS_INCOMPLETE',
        hint: failed.some((t) => t.status === 'rejected') ? 'Is your key on the node allow-list? (on the node: r1 node allow <your address>)' : 'Check the URL and that the node is running (r1 node start).',
        details: result.targets,
      })
    }
    return undefined
  }
}
