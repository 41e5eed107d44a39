import {plainProgress, tasks} from '../ui/tasks.js'
import {MAX_TARGET_LINES, isFailure, statusCounts, type TargetStatus} from '../fleet/result.js'
import type {Target} from './targets.js'

/** Without a terminal, the fleet line's counts are written this often while targets are still going. */
const PLAIN_COUNTS_EVERY_MS = 10_000
/** On a terminal, the failures kept under the fleet line (all of them are in the report that follows). */
const FAILURE_LINES = 10

export interface TargetProgress {
  step(target: Target, step: string, detail?: string): void
  finish(target: Target, status: TargetStatus, detail?: string): void
  /** Resolves once the progress is drawn in its final state. */
  close(results: ReadonlyArray<{target: string; status: TargetStatus; error?: string}>): Promise<void>
}

/**
 * Progress of a fleet command on stderr (listr2; silent under `--json`): one line per target, or past
 * MAX_TARGET_LINES one for the fleet, with its counts and a line per failure as it comes (what a CI log wants).
 */
export function targetProgress(targets: Target[], options: {json?: boolean}): TargetProgress {
  const progress: {running: Promise<void>; step: TargetProgress['step']; finish: TargetProgress['finish']; end?: () => void} = targets.length > MAX_TARGET_LINES ? fleetLine(targets, options) : targetLines(targets, options)
  return {
    ...progress,
    async close(results) {
      for (const r of results) {
        const t = targets.find((x) => x.name === r.target)
        if (t) progress.finish(t, r.status, r.error?.split('\n')[0])
      }
      progress.end?.()
      await progress.running
    },
  }
}

interface Line {
  title: string
  set?: (title: string) => void
  done?: (status: TargetStatus, detail?: string) => void
  finished?: {status: TargetStatus; detail?: string}
}

function outcome(target: Target, status: TargetStatus, detail: string | undefined): string {
  return `${target.name}: ${status}${detail ? ` — ${detail}` : ''}`
}

/** One listr2 line per target showing its current step; `step()` may come before listr started the line: the latest title is applied when it does. */
function targetLines(targets: Target[], options: {json?: boolean}) {
  const lines = new Map<string, Line>(targets.map((t) => [t.name, {title: `${t.name}: queued`}]))
  const list = tasks(
    targets.map((t) => ({
      title: lines.get(t.name)!.title,
      task: async (_ctx: object, task: {title: string}) => {
        const line = lines.get(t.name)!
        line.set = (title) => (task.title = title)
        task.title = line.title
        const {status, detail} = line.finished ?? (await new Promise<{status: TargetStatus; detail?: string}>((resolve) => (line.done = (status, detail) => resolve({status, detail}))))
        task.title = outcome(t, status, detail)
        if (isFailure(status)) throw new Error(task.title)
      },
    })),
    {json: options.json, concurrent: true, exitOnError: false},
  )
  return {
    running: list.run().then(
      () => undefined,
      () => undefined,
    ),
    step(target: Target, step: string, detail?: string) {
      const line = lines.get(target.name)
      if (!line || line.finished) return
      line.title = `${target.name}: ${step}${detail ? ` (${detail})` : ''}`
      line.set?.(line.title)
    },
    finish(target: Target, status: TargetStatus, detail?: string) {
      const line = lines.get(target.name)
      if (!line || line.finished) return
      line.finished = {status, detail}
      line.done?.(status, detail)
    },
  }
}

/** One listr2 line for the whole fleet: how many targets ended how, and a line per failure as it comes. */
function fleetLine(targets: Target[], options: {json?: boolean}) {
  const names = new Set(targets.map((t) => t.name))
  const finished = new Map<string, TargetStatus>()
  const failures: string[] = []
  let task: {title: string; output: string} | undefined
  let allDone!: () => void
  const over = new Promise<void>((resolve) => (allDone = resolve))
  const title = () => `${targets.length} targets: ${statusCounts([...finished.values()], targets.length)}`
  const list = tasks(
    [
      {
        title: title(),
        rendererOptions: {outputBar: FAILURE_LINES, persistentOutput: true},
        task: async (_ctx: object, t: {title: string; output: string}) => {
          task = t
          for (const line of failures) t.output = line
          const timer = plainProgress() ? setInterval(() => (t.output = title()), PLAIN_COUNTS_EVERY_MS) : undefined
          await over
          clearInterval(timer)
          t.title = title()
          if (failures.length > 0) throw new Error(t.title)
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
    /** Ends the line even if some target never finished (it is counted as still going). */
    end: () => allDone(),
    finish(target: Target, status: TargetStatus, detail?: string) {
      if (!names.has(target.name) || finished.has(target.name)) return
      finished.set(target.name, status)
      if (isFailure(status)) {
        failures.push(outcome(target, status, detail))
        if (task) task.output = failures.at(-1)!
      }
      if (task) task.title = title()
      if (finished.size === names.size) allDone()
    },
  }
}
