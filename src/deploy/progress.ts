import {plainProgress, plainTaskLine, tasks} from '../ui/tasks.js'
import {CONSEQUENCES, MAX_TARGET_LINES, isFailure, outcomeLine, statusCounts, type TargetStatus} from '../fleet/result.js'
import type {Target} from './targets.js'

/** Without a terminal, the fleet line's counts are written this often while targets are still going. */
const PLAIN_COUNTS_EVERY_MS = 10_000
/** On a terminal, the failures kept under the fleet line (all of them are in the report that follows). */
const FAILURE_LINES = 10

export interface TargetProgress {
  step(target: Target, step: string, detail?: string): void
  /** A target ended; a later call with another status (a rollback, the final results) updates it. */
  finish(target: Target, status: TargetStatus, detail?: string): void
  /** Resolves once the progress is drawn in its final state; with no results (the command failed before any), the targets not ended are skipped. */
  close(results: ReadonlyArray<{target: string; status: TargetStatus; error?: string}>): Promise<void>
}

interface Lines {
  running: Promise<void>
  step: TargetProgress['step']
  finish: TargetProgress['finish']
  /** Ends every line still going (a rollout's targets may end twice: the line waits for its close). */
  end(): void
}

/**
 * Progress of a fleet command on stderr (listr2; silent under `--json`): one line per target, or past
 * MAX_TARGET_LINES one for the fleet, with its counts and a line per failure as it comes (what a CI log wants).
 */
export function targetProgress(targets: Target[], options: {json?: boolean}): TargetProgress {
  const lines = targets.length > MAX_TARGET_LINES ? fleetLine(targets, options) : targetLines(targets, options)
  return {
    step: lines.step,
    finish: lines.finish,
    async close(results) {
      for (const r of results) {
        const t = targets.find((x) => x.name === r.target)
        if (t) lines.finish(t, r.status, r.error?.split('\n')[0])
      }
      lines.end()
      await lines.running
    },
  }
}

interface Line {
  title: string
  set?: (title: string) => void
  done?: () => void
  finished?: {status: TargetStatus; detail?: string}
  /** The line shows its outcome (a later one, a rollback, is drawn over it or written after it). */
  ended?: boolean
}

/** One listr2 line per target showing its current step; `step()` may come before listr started the line: the latest title is applied when it does. */
function targetLines(targets: Target[], options: {json?: boolean}): Lines {
  const lines = new Map<string, Line>(targets.map((t) => [t.name, {title: `${t.name}: queued`}]))
  const list = tasks(
    targets.map((t) => ({
      title: lines.get(t.name)!.title,
      task: async (_ctx: object, task: {title: string}) => {
        const line = lines.get(t.name)!
        line.set = (title) => (task.title = title)
        task.title = line.title
        if (!line.finished) await new Promise<void>((resolve) => (line.done = resolve))
        const {status, detail} = line.finished!
        task.title = outcomeLine(t.name, status, detail)
        line.ended = true
        if (isFailure(status)) throw new Error(task.title)
      },
    })),
    {json: options.json, concurrent: true, exitOnError: false},
  )
  const finish = (target: Target, status: TargetStatus, detail?: string) => {
    const line = lines.get(target.name)
    if (!line || line.finished?.status === status) return
    const later = line.finished !== undefined
    line.finished = {status, detail}
    if (!later) line.done?.()
    else if (line.ended && !options.json) {
      // a later outcome (a target put back): redrawn over the line on a terminal, a line of its own in a log
      const title = outcomeLine(target.name, status, detail)
      if (plainProgress()) plainTaskLine(isFailure(status), title)
      else line.set?.(title)
    }
  }
  return {
    running: list.run().then(
      () => undefined,
      () => undefined,
    ),
    step(target, step, detail) {
      const line = lines.get(target.name)
      if (!line || line.finished) return
      line.title = `${target.name}: ${step}${detail ? ` (${detail})` : ''}`
      line.set?.(line.title)
    },
    finish,
    end: () => targets.forEach((t) => lines.get(t.name)!.finished ?? finish(t, 'skipped')),
  }
}

/**
 * One listr2 line for the whole fleet: how many targets ended how, and a line per failure as it comes
 * (the first MAX_TARGET_LINES; targets skipped, never reached or rolled back because of another's failure are only counted).
 */
function fleetLine(targets: Target[], options: {json?: boolean}): Lines {
  const names = new Set(targets.map((t) => t.name))
  const finished = new Map<string, TargetStatus>()
  const shown = new Set<string>()
  const queued: string[] = []
  let task: {title: string; output: string} | undefined
  let allDone!: () => void
  const over = new Promise<void>((resolve) => (allDone = resolve))
  const title = () => `${targets.length} targets: ${statusCounts([...finished.values()], targets.length)}`
  const say = (line: string) => (task ? (task.output = line) : queued.push(line))
  const list = tasks(
    [
      {
        title: title(),
        rendererOptions: {outputBar: FAILURE_LINES, persistentOutput: true},
        task: async (_ctx: object, t: {title: string; output: string}) => {
          task = t
          for (const line of queued.splice(0)) t.output = line
          const timer = plainProgress() ? setInterval(() => (t.output = title()), PLAIN_COUNTS_EVERY_MS).unref() : undefined
          await over
          clearInterval(timer)
          t.title = title()
          if ([...finished.values()].some(isFailure)) throw new Error(t.title)
        },
      },
    ],
    {json: options.json},
  )
  return {
    running: list.run().then(
      () => undefined,
      () => undefined,
    ),
    step() {}, // a fleet's steps are its counts
    finish(target, status, detail) {
      if (!names.has(target.name) || finished.get(target.name) === status) return
      finished.set(target.name, status)
      // a target put back with no error of its own was rolled back for another's failure: counted, not shown
      const own = isFailure(status) && !CONSEQUENCES.has(status) && !(status === 'rolled-back' && !detail)
      if (own && !shown.has(target.name)) {
        shown.add(target.name)
        if (shown.size <= MAX_TARGET_LINES) say(outcomeLine(target.name, status, detail))
        else if (shown.size === MAX_TARGET_LINES + 1) say('… more failures (counted on this line)')
      }
      if (task) task.title = title()
    },
    end() {
      for (const t of targets) if (!finished.has(t.name)) finished.set(t.name, 'skipped')
      allDone()
    },
  }
}
