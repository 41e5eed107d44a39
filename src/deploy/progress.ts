import {tasks} from '../ui/tasks.js'
import {isFailure, type TargetStatus} from '../fleet/result.js'
import type {Target} from './targets.js'

interface Line {
  title: string
  set?: (title: string) => void
  done?: (status: TargetStatus, detail?: string) => void
  finished?: {status: TargetStatus; detail?: string}
}

/**
 * One listr2 line per target showing its current step (stderr; silent under `--json`).
 * `step()` may be called before listr has started a line: the latest title is applied when it does.
 */
export function targetProgress(targets: Target[], options: {json?: boolean}) {
  const lines = new Map<string, Line>(targets.map((t) => [t.name, {title: `${t.name}: queued`}]))
  const list = tasks(
    targets.map((t) => ({
      title: lines.get(t.name)!.title,
      task: async (_ctx: object, task: {title: string}) => {
        const line = lines.get(t.name)!
        line.set = (title) => (task.title = title)
        task.title = line.title
        const {status, detail} = line.finished ?? (await new Promise<{status: TargetStatus; detail?: string}>((resolve) => (line.done = (status, detail) => resolve({status, detail}))))
        task.title = `${t.name}: ${status}${detail ? ` — ${detail}` : ''}`
        if (isFailure(status)) throw new Error(task.title)
      },
    })),
    {json: options.json, concurrent: true, exitOnError: false},
  )
  const running = list.run().catch(() => undefined)
  return {
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
    /** Resolves once every line is drawn in its final state. */
    async close(results: ReadonlyArray<{target: string; status: TargetStatus; error?: string}>) {
      for (const r of results) {
        const t = targets.find((x) => x.name === r.target)
        if (t) this.finish(t, r.status, r.error?.split('\n')[0])
      }
      await running
    },
  }
}
