import {mkdir, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {readRecordFiles, syncDir, writeFileAtomic} from '../files.js'
import {decrypt} from '../protocol/encryption.js'
import type {Identity} from '../protocol/identity.js'
import {SealedValueSchema} from '../protocol/messages.js'
import {pipelineFileName} from './state-store.js'

/**
 * The secrets of each pipeline, as R1_SECRETS delivered them: still sealed to the node's own key, so
 * encrypted at rest. One file per pipeline, `secrets/<safe name>.json` (mode 0600, written like the
 * pipeline state: temp file, fsync, rename, fsync of the folder). Values are opened only to start an
 * instance, and never written anywhere in the clear.
 */

export const SECRETS_DIR = 'secrets'

/** One sealed value: EE_ENCRYPTED_DATA from SENDER (a throwaway key) to this node. */
export interface SealedValue {
  SENDER: string
  DATA: string
}

interface SecretsFile {
  format: 'r1-node-secrets'
  version: 1
  name: string
  secrets: Record<string, SealedValue>
}

/** What opening a pipeline's secrets for one instance gave: the values, and the names it lacks. */
export interface OpenedSecrets {
  values: Record<string, string>
  missing: string[]
}

export class SecretStore {
  readonly dir: string
  private readonly sealed = new Map<string, Record<string, SealedValue>>()

  /** `dataDir` undefined: kept in memory only (a throw-away node). */
  constructor(dataDir: string | undefined) {
    this.dir = dataDir === undefined ? '' : join(dataDir, SECRETS_DIR)
  }

  fileOf(name: string): string {
    return join(this.dir, pipelineFileName(name))
  }

  /** The sealed set of a pipeline (empty when none was sent). */
  of(pipeline: string): Readonly<Record<string, SealedValue>> {
    return this.sealed.get(pipeline) ?? {}
  }

  has(pipeline: string): boolean {
    return this.sealed.has(pipeline)
  }

  /** Stores a pipeline's set durably, replacing the previous one; on failure nothing changed. */
  async set(pipeline: string, secrets: Record<string, SealedValue>): Promise<void> {
    if (this.dir) {
      await mkdir(this.dir, {recursive: true, mode: 0o700})
      const file: SecretsFile = {format: 'r1-node-secrets', version: 1, name: pipeline, secrets}
      await writeFileAtomic(this.fileOf(pipeline), JSON.stringify(file) + '\n', {mode: 0o600})
    }
    this.sealed.set(pipeline, {...secrets})
  }

  /** Removes a pipeline's set durably (the folder is fsynced). */
  async remove(pipeline: string): Promise<void> {
    if (this.dir) {
      await rm(this.fileOf(pipeline), {force: true})
      await syncDir(this.dir)
    }
    this.sealed.delete(pipeline)
  }

  /**
   * Opens the named secrets of a pipeline with the node's key. A name not in the set, or whose value
   * does not open (sealed to another key), is `missing`.
   */
  open(pipeline: string, names: readonly string[], node: Identity | undefined): OpenedSecrets {
    const set = this.of(pipeline)
    const values: Record<string, string> = {}
    const missing: string[] = []
    for (const name of names) {
      const sealed = Object.hasOwn(set, name) ? set[name] : undefined
      if (!sealed || !node) {
        missing.push(name)
        continue
      }
      try {
        values[name] = decrypt(sealed.DATA, sealed.SENDER, node)
      } catch {
        missing.push(name)
      }
    }
    return {values, missing}
  }

  /** A fingerprint of the sealed values `names` use (what changed since an instance started). */
  fingerprint(pipeline: string, names: readonly string[]): string {
    const set = this.of(pipeline)
    return names.map((n) => `${n}=${Object.hasOwn(set, n) ? set[n].DATA : ''}`).join('\n')
  }

  /** Loads every stored set; a corrupt file is an error naming it (nothing is changed). */
  async load(): Promise<void> {
    if (!this.dir) return
    for (const {file: path, text} of await readRecordFiles(this.dir)) {
      const file = parse(text, path)
      this.sealed.set(file.name, file.secrets)
    }
  }
}

function parse(text: string, path: string): SecretsFile {
  let data: SecretsFile | undefined
  try {
    data = JSON.parse(text) as SecretsFile
  } catch {
    data = undefined
  }
  const valid =
    data?.format === 'r1-node-secrets' &&
    data.version === 1 &&
    typeof data.name === 'string' &&
    typeof data.secrets === 'object' &&
    data.secrets !== null &&
    Object.values(data.secrets).every((v) => SealedValueSchema.safeParse(v).success)
  if (!valid) {
    throw new R1Error(`The node's secrets file ${path} is corrupt; nothing was changed`, ExitCode.INVALID_CONFIG, {
      code: 'STATE_CORRUPT',
      hint: `Move it aside (the pipeline's instances then lack their secrets until the next deploy): mv ${path} ${path}.bad`,
    })
  }
  return data!
}

