import type {TargetStatus} from '../deploy/fanout.js'

/**
 * The human output of a per-target command (`r1 cstore …`, `r1 r1fs …`): one row per target, or, for one
 * target that answered, `single`'s text alone (a value a script can read); the failure on stderr
 * (only that with `failureOnly`, when stdout carries data).
 */
export async function printTargetReport<T>(
  targets: Array<{target: string; status: TargetStatus; error?: string; hint?: string; result?: T}>,
  what: string,
  detail: (result: T) => string,
  single?: (result: T) => string,
  options: {failureOnly?: boolean} = {},
): Promise<void> {
  const [{out, err}, {reportTargets, failureText}, {escapeControlKeepLines}, {failureOf}] = await Promise.all([import('./colors.js'), import('../deploy/render.js'), import('./escape.js'), import('../deploy/fanout.js')])
  const failure = failureOf(what, targets)
  const only = targets.length === 1 ? targets[0] : undefined
  if (options.failureOnly) {
    if (failure) process.stderr.write(failureText(failure, err))
    return
  }
  if (single && only?.result !== undefined) {
    process.stdout.write(escapeControlKeepLines(single(only.result)) + '\n')
    if (failure) process.stderr.write(failureText(failure, err))
    return
  }
  const report = reportTargets(targets, (i) => (targets[i].result === undefined ? '' : detail(targets[i].result as T)), {out, err}, failure)
  process.stdout.write(report.stdout)
  process.stderr.write(report.stderr)
}
