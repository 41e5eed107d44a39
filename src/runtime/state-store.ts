import {createHash} from 'node:crypto'
import {mkdir, readFile, rename, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {readRecordFiles, syncDir, writeFileAtomic} from '../files.js'
import {PipelineConfigSchema, type PipelineConfig} from '../protocol/pipeline.js'

/**
 * The node's desired state on disk: one file per pipeline, `pipelines/<safe name>.json`, holding its
 * current (or archived) version and the versions kept for rollback. A change rewrites one file
 * (temp file, fsync, rename, fsync the directory), so its cost does not grow with the other pipelines.
 * A `state.json` of the earlier single-file format (r1-node-state v1) is migrated on load.
 */

/** A stored version of a pipeline's desired config. */
export interface PipelineVersion {
  /** Node-assigned, increasing per pipeline. */
  version: number
  config: PipelineConfig
  appliedAt: string
  /** Address whose command created this version (absent in records of older nodes). */
  sender?: string
  /** Why it was made (`r1 deploy --message`), when given. */
  message?: string
  /** The version an R1_ROLLBACK (or `r1 pipelines start`) copied. */
  restoredFrom?: number
}

/** Everything the node keeps about one pipeline. */
export interface PipelineRecord {
  name: string
  /** Archived: kept for rollback, no instance runs. */
  archived: boolean
  current: PipelineVersion
  /** Versions kept for R1_ROLLBACK, oldest first (the current one included). */
  history: PipelineVersion[]
}

interface PipelineFile {
  format: 'r1-node-pipeline'
  version: 1
  name: string
  archived: boolean
  current: PipelineVersion
  history: PipelineVersion[]
}

interface LegacyStateFile {
  format: 'r1-node-state'
  version: 1
  pipelines: PipelineVersion[]
  archived: PipelineVersion[]
  history: Record<string, PipelineVersion[]>
}

export const PIPELINES_DIR = 'pipelines'
export const LEGACY_STATE_FILE = 'state.json'

/**
 * The file name of a pipeline: a readable, lowercase, length-bounded form of the name plus a hash of
 * the exact name, so names differing only in case (or in characters a file name cannot hold) never
 * share a file, on any filesystem.
 */
export function pipelineFileName(name: string): string {
  const readable = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '_').slice(0, 100)
  return `${readable}-${createHash('sha256').update(name).digest('hex').slice(0, 16)}.json`
}

export class StateStore {
  readonly dir: string

  constructor(readonly dataDir: string) {
    this.dir = join(dataDir, PIPELINES_DIR)
  }

  fileOf(name: string): string {
    return join(this.dir, pipelineFileName(name))
  }

  /** Writes one pipeline's record durably; on failure the previous file is untouched. */
  async write(record: PipelineRecord): Promise<void> {
    const file: PipelineFile = {format: 'r1-node-pipeline', version: 1, ...record}
    await writeFileAtomic(this.fileOf(record.name), JSON.stringify(file) + '\n', {mode: 0o600})
  }

  /** Removes one pipeline's record durably (the directory is fsynced). */
  async remove(name: string): Promise<void> {
    await rm(this.fileOf(name), {force: true})
    await syncDir(this.dir)
  }

  /**
   * Every pipeline record. A corrupt file is an error naming it (nothing is changed or overwritten);
   * an old `state.json` is first split into per-pipeline files and then renamed `state.json.migrated`.
   */
  async load(): Promise<PipelineRecord[]> {
    await this.migrate()
    let files: Array<{file: string; text: string}>
    try {
      files = await readRecordFiles(this.dir)
    } catch (error) {
      throw new R1Error(`Cannot read the node state ${this.dir}: ${(error as Error).message}`, ExitCode.FAILURE, {code: 'STATE_UNREADABLE'})
    }
    const records: PipelineRecord[] = []
    const seen = new Map<string, string>()
    for (const {file, text} of files) {
      const record = parsePipelineFile(text, file)
      const other = seen.get(record.name)
      if (other) throw corrupt(file, `pipeline ${JSON.stringify(record.name)} is also in ${other}`)
      seen.set(record.name, file)
      records.push(record)
    }
    return records
  }

  private async migrate(): Promise<void> {
    const legacy = join(this.dataDir, LEGACY_STATE_FILE)
    let text: string
    try {
      text = await readFile(legacy, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw new R1Error(`Cannot read the node state ${legacy}: ${(error as Error).message}`, ExitCode.FAILURE, {code: 'STATE_UNREADABLE'})
    }
    const state = parseLegacyState(text, legacy)
    const records = new Map<string, PipelineRecord>()
    for (const version of state.archived) records.set(version.config.NAME, {name: version.config.NAME, archived: true, current: version, history: []})
    for (const version of state.pipelines) records.set(version.config.NAME, {name: version.config.NAME, archived: false, current: version, history: []})
    for (const [name, versions] of Object.entries(state.history)) {
      const record = records.get(name)
      if (record) record.history = versions
    }
    await mkdir(this.dir, {recursive: true, mode: 0o700})
    // idempotent: a migration interrupted here is redone from state.json on the next start
    for (const record of records.values()) await this.write(record)
    await rename(legacy, `${legacy}.migrated`)
    await syncDir(this.dataDir)
  }
}

function corrupt(file: string, why: string): R1Error {
  return new R1Error(`The node state ${file} is corrupt (${why}); nothing was changed`, ExitCode.INVALID_CONFIG, {
    code: 'STATE_CORRUPT',
    hint: `Move the file aside (the node then starts without that state) or restore it from a backup: mv ${file} ${file}.bad`,
  })
}

function checkVersion(version: unknown, file: string): void {
  const v = version as PipelineVersion | undefined
  if (typeof v?.version !== 'number' || !PipelineConfigSchema.safeParse(v.config).success) throw corrupt(file, `bad pipeline entry ${JSON.stringify(v?.config?.NAME ?? null)}`)
}

function parseJson<T>(text: string, file: string): T {
  try {
    return JSON.parse(text) as T
  } catch (error) {
    throw corrupt(file, `not JSON: ${(error as Error).message}`)
  }
}

function parsePipelineFile(text: string, file: string): PipelineRecord {
  const data = parseJson<PipelineFile>(text, file)
  if (data?.format !== 'r1-node-pipeline' || data.version !== 1 || typeof data.name !== 'string' || typeof data.archived !== 'boolean' || !Array.isArray(data.history)) {
    throw corrupt(file, 'not an r1 node pipeline, version 1')
  }
  for (const version of [data.current, ...data.history]) checkVersion(version, file)
  if (data.current.config.NAME !== data.name) throw corrupt(file, `holds pipeline ${JSON.stringify(data.current.config.NAME)} under the name ${JSON.stringify(data.name)}`)
  return {name: data.name, archived: data.archived, current: data.current, history: data.history}
}

function parseLegacyState(text: string, file: string): LegacyStateFile {
  const state = parseJson<LegacyStateFile>(text, file)
  if (state?.format !== 'r1-node-state' || state.version !== 1 || !Array.isArray(state.pipelines) || !Array.isArray(state.archived) || typeof state.history !== 'object' || state.history === null) {
    throw corrupt(file, 'not an r1 node state, version 1')
  }
  for (const version of [...state.pipelines, ...state.archived, ...Object.values(state.history).flat()]) checkVersion(version, file)
  return state
}
