import {randomBytes} from 'node:crypto'
import {mkdir} from 'node:fs/promises'
import {join} from 'node:path'
import {z} from 'zod'
import {ExitCode, R1Error} from '../errors.js'
import {parseJsonOrUndefined, readRecordFiles, writeFileAtomic} from '../files.js'
import {projectStateDir, SECRETS_DIR} from '../secrets/store.js'
import type {RolloutResult} from './rollout.js'

/**
 * The project's rollout history: one file per rollout in `.r1/rollouts/<id>.json`, written atomically
 * (a crash leaves the previous files whole), read by `r1 rollouts ls|show`.
 */

const RolloutRecordSchema = z.object({
  id: z.string(),
  /** The client address that ran it (the CLI key). */
  who: z.string(),
  started: z.string(),
  finished: z.string(),
  message: z.string().optional(),
  exitCode: z.number().int(),
  reason: z.enum(['aborted', 'interrupted']).optional(),
  abort: z.string().optional(),
  rolledBack: z.boolean().optional(),
  waves: z.array(z.object({wave: z.number().int(), targets: z.array(z.string()), state: z.enum(['done', 'stopped', 'not started'])})),
  targets: z.array(
    z.object({
      target: z.string(),
      address: z.string(),
      wave: z.number().int(),
      status: z.string(),
      error: z.string().optional(),
      health: z.object({status: z.enum(['ok', 'degraded', 'failed']), reason: z.string().optional()}).optional(),
    }),
  ),
})
export type RolloutRecord = z.infer<typeof RolloutRecordSchema>

function rolloutsDir(projectDir: string): string {
  return join(projectDir, SECRETS_DIR, 'rollouts')
}

/** A new rollout id: sortable by time, unique (`20261203-145501-3fa2`). */
export function newRolloutId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
  return `${stamp}-${randomBytes(2).toString('hex')}`
}

/** The record of a finished rollout, from its result. */
export function recordOf(result: RolloutResult, meta: {id: string; who: string; started: Date; message?: string}): RolloutRecord {
  return {
    id: meta.id,
    who: meta.who,
    started: meta.started.toISOString(),
    finished: new Date().toISOString(),
    ...(meta.message ? {message: meta.message} : {}),
    exitCode: result.exitCode,
    ...(result.reason ? {reason: result.reason, abort: result.abort, rolledBack: result.rolledBack} : {}),
    waves: result.waves,
    targets: result.targets.map((t) => ({
      target: t.target,
      address: t.address,
      wave: t.wave,
      status: t.status,
      ...(t.error ? {error: t.error} : {}),
      ...(t.health ? {health: {status: t.health.status, ...(t.health.reason ? {reason: t.health.reason} : {})}} : {}),
    })),
  }
}

export async function saveRollout(projectDir: string, record: RolloutRecord): Promise<string> {
  await projectStateDir(projectDir)
  const dir = rolloutsDir(projectDir)
  await mkdir(dir, {recursive: true, mode: 0o700})
  const file = join(dir, `${record.id}.json`)
  await writeFileAtomic(file, JSON.stringify(record, null, 2) + '\n', {mode: 0o600})
  return file
}

/** Every recorded rollout, oldest first; a file that is not a rollout record is reported, not skipped silently. */
export async function listRollouts(projectDir: string): Promise<RolloutRecord[]> {
  const files = await readRecordFiles(rolloutsDir(projectDir))
  return files.map(({file, text}) => parseRecord(file, text))
}

export async function readRollout(projectDir: string, id: string): Promise<RolloutRecord> {
  const all = await listRollouts(projectDir)
  const found = all.find((r) => r.id === id) ?? (id === 'last' ? all.at(-1) : undefined)
  if (found) return found
  const ids = all.map((r) => r.id)
  throw new R1Error(`No rollout "${id}" in ${rolloutsDir(projectDir)}`, ExitCode.USAGE, {
    code: 'UNKNOWN_ROLLOUT',
    hint: ids.length > 0 ? `Recorded: ${ids.slice(-5).join(', ')} (\`r1 rollouts ls\`; \`last\` names the latest)` : 'No rollout recorded yet: `r1 deploy --waves …` or `--canary N` records one.',
  })
}

function parseRecord(file: string, text: string): RolloutRecord {
  const parsed = RolloutRecordSchema.safeParse(parseJsonOrUndefined(text))
  if (!parsed.success) throw new R1Error(`${file} is not a rollout record`, ExitCode.FAILURE, {code: 'ROLLOUT_RECORD_CORRUPT', hint: 'Move the file away; the other records are intact.'})
  return parsed.data
}
