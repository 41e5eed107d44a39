import type {TargetProgress} from '../deploy/progress.js'
import {cliKeyPath, requireIdentity} from '../protocol/identity.js'
import {escapeControl} from '../ui/escape.js'
import {canPrompt} from '../ui/prompts.js'
import {newRolloutId, recordOf, saveRollout} from './history.js'
import {type RolloutEvent, type RolloutOptions, type RolloutResult, rollout} from './rollout.js'

/**
 * `r1 deploy --waves/--canary` around the rollout: progress notes on stderr, the Ctrl-C question (on a
 * terminal; without one the answer is "roll back"), and the record in the project's history.
 */

export interface RolloutIo {
  projectDir: string
  json: boolean
  progress: TargetProgress
}

/** A rollout's result with its id in the history (absent for --dry-run) or why it could not be recorded. */
export type RolloutOutput = RolloutResult & {id?: string; historyError?: string}

export async function runRollout(options: RolloutOptions, io: RolloutIo): Promise<RolloutOutput> {
  const started = new Date()
  const id = newRolloutId(started)
  const who = (await requireIdentity(cliKeyPath())).address
  const note = (event: RolloutEvent) => {
    if (!io.json) process.stderr.write(escapeControl(noteOf(event)) + '\n')
  }
  const result = await rollout({
    ...options,
    onProgress: note,
    onInterrupt: async () => {
      if (!canPrompt(io.json)) return 'rollback'
      const {terminalAsker} = await import('../scaffold/prompts.js')
      const back = await terminalAsker().confirm('Rollout interrupted: put the nodes updated so far back to the version they had?', true)
      return back ? 'rollback' : 'keep'
    },
  })
  await io.progress.close(result.targets)
  if (options.dryRun) return result
  try {
    await saveRollout(io.projectDir, recordOf(result, {id, who, started, message: options.message}))
  } catch (error) {
    // what happened on the nodes is still reported; only its record is missing
    const historyError = `the rollout could not be recorded in .r1/rollouts: ${(error as Error).message}`
    process.stderr.write(`warning: ${historyError}\n`)
    return {id, ...result, historyError}
  }
  return {id, ...result}
}

function noteOf(event: RolloutEvent): string {
  switch (event.kind) {
    case 'wave':
      return `wave ${event.wave}/${event.of}: ${event.targets.join(', ')}`
    case 'soak':
      return `wave ${event.wave}: soaking for ${event.ms / 1000} s`
    case 'health':
      return `${event.target}: ${event.health.status}${event.health.reason ? ` — ${event.health.reason}` : ''}`
    case 'abort':
      return `stopping the rollout: ${event.reason}`
    case 'rollback':
      return `putting back ${event.targets.join(', ')}`
  }
}
