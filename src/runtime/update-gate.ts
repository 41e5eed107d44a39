import {ExitCode, R1Error} from '../errors.js'
import type {UpdateDecision} from '../plugin/runner.js'

/**
 * Plugins' `beforeUpdate` hooks, asked before a deploy changes, replaces or removes running instances
 * (like Greengrass's update deferral): any refusal refuses the whole command (nothing changes, the
 * reason goes back to the client); a deferral makes the node ask that instance again later, within
 * one bound for the command, after which the update goes ahead. Rollbacks are never asked.
 */

/** How long one command may be deferred in all: below the client's wait for the command's acceptance. */
export const MAX_UPDATE_DEFER_MS = 20_000

export interface GatedInstance {
  /** `SIGNATURE/INSTANCE_ID`. */
  name: string
  path: [string, string, string]
  /** The instance's new config (null: it is removed). */
  next: Record<string, unknown> | null
  ask(next: Record<string, unknown> | null): Promise<UpdateDecision>
}

export async function askBeforeUpdate(instances: readonly GatedInstance[], onDefer: (instance: GatedInstance, seconds: number, reason?: string) => void, maxDeferMs = MAX_UPDATE_DEFER_MS): Promise<void> {
  const deadline = Date.now() + maxDeferMs
  for (const instance of instances) {
    for (;;) {
      const decision = await instance.ask(instance.next)
      if (decision.action === 'ok') break
      if (decision.action === 'refuse') {
        throw new R1Error(`${instance.name} refused the update: ${decision.reason}`, ExitCode.REJECTED, {code: 'UPDATE_REFUSED'})
      }
      const wait = Math.min(decision.seconds * 1000, deadline - Date.now())
      if (wait <= 0) break // deferred as long as a command may be: the update goes ahead
      onDefer(instance, wait / 1000, decision.reason)
      await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }
}
