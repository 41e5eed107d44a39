import {createReadStream} from 'node:fs'
import {mkdir, readFile, readdir, rename, rm} from 'node:fs/promises'
import {join} from 'node:path'
import type {Readable} from 'node:stream'
import {syncDir, writeFileAtomic} from '../files.js'
import type {BlobMeta, BlobStore} from './r1fs.js'
import {CID_PATTERN} from './r1fs-crypto.js'

/**
 * R1FS's embedded store: `<root>/<first 2 hex of cid>/<cid>` holds the stored bytes and `<cid>.json`
 * its metadata, written last (so a file exists once its metadata does). Names are cids only, never
 * user input. On open, bytes without metadata (an add cut short) and interrupted writes are removed.
 */
export class LocalBlobStore implements BlobStore {
  private used = 0
  private readonly sizes = new Map<string, number>()

  private constructor(private readonly root: string) {}

  static async open(root: string): Promise<LocalBlobStore> {
    const store = new LocalBlobStore(root)
    await mkdir(root, {recursive: true, mode: 0o700})
    for (const shard of await readdir(root)) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue
      const dir = join(root, shard)
      const names = new Set(await readdir(dir))
      for (const name of names) {
        const cid = name.endsWith('.json') ? name.slice(0, -5) : name
        if (CID_PATTERN.test(cid) && names.has(cid) && names.has(`${cid}.json`)) {
          if (name === cid) store.track(cid, (await store.meta(cid))?.stored ?? 0)
        } else await rm(join(dir, name), {force: true})
      }
    }
    return store
  }

  private track(cid: string, stored: number): void {
    this.used += stored - (this.sizes.get(cid) ?? 0)
    this.sizes.set(cid, stored)
  }

  private path(cid: string): string {
    return join(this.root, cid.slice(0, 2), cid)
  }

  async usedBytes(): Promise<number> {
    return this.used
  }

  async meta(cid: string): Promise<BlobMeta | undefined> {
    try {
      return JSON.parse(await readFile(`${this.path(cid)}.json`, 'utf8')) as BlobMeta
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  }

  async put(cid: string, spoolFile: string, meta: BlobMeta): Promise<void> {
    const path = this.path(cid)
    await mkdir(join(this.root, cid.slice(0, 2)), {recursive: true, mode: 0o700})
    await rename(spoolFile, path)
    await syncDir(join(this.root, cid.slice(0, 2)))
    await writeFileAtomic(`${path}.json`, JSON.stringify(meta), {mode: 0o600})
    this.track(cid, meta.stored)
  }

  async open(cid: string): Promise<Readable> {
    return createReadStream(this.path(cid))
  }

  async delete(cid: string): Promise<boolean> {
    if (!this.sizes.has(cid)) return false
    const path = this.path(cid)
    await rm(`${path}.json`, {force: true})
    await syncDir(join(this.root, cid.slice(0, 2)))
    await rm(path, {force: true})
    this.used -= this.sizes.get(cid)!
    this.sizes.delete(cid)
    return true
  }

  async list(): Promise<Array<{cid: string; meta: BlobMeta}>> {
    const out: Array<{cid: string; meta: BlobMeta}> = []
    for (const cid of this.sizes.keys()) {
      const meta = await this.meta(cid)
      if (meta) out.push({cid, meta})
    }
    return out
  }

  async close(): Promise<void> {}
}
