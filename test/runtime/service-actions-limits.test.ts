import {createHash} from 'node:crypto'
import {mkdtemp, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {R1FS_CHUNK_BYTES, type R1fsAdd} from '../../src/protocol/services.js'
import {ServiceActions} from '../../src/runtime/service-actions.js'
import {openServices, type NodeServices} from '../../src/services/index.js'
import {until} from './helpers.js'

/** Upload slots, idle expiry and the spool of the R1FS actions, with the real embedded services and a clock the test moves. */

const data = Buffer.alloc(R1FS_CHUNK_BYTES + 1, 7)
const sha = createHash('sha256').update(data).digest('hex')
const chunk = (upload: string, index: number): R1fsAdd => ({
  UPLOAD: upload,
  FILENAME: 'f.bin',
  SIZE: data.length,
  SHA256: sha,
  INDEX: index,
  COUNT: 2,
  DATA: data.subarray(index * R1FS_CHUNK_BYTES, (index + 1) * R1FS_CHUNK_BYTES).toString('base64'),
})

describe('R1FS uploads over the signed protocol', () => {
  let root: string
  let services: NodeServices
  let actions: ServiceActions
  let now = 0
  const meta = (sender: string) => ({hash: 'h', sender})

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'r1-service-limits-'))
    services = await openServices({dataDir: join(root, 'services')})
    actions = await ServiceActions.open(join(root, 'spool'), () => services, {perSender: 2, idleMs: 1000}, () => now)
  })

  afterAll(async () => {
    await actions.close()
    await services.cstore.close()
    await services.r1fs.close()
    await rm(root, {recursive: true, force: true})
  })

  it('gives each sender its own few slots, and frees them when an upload completes', async () => {
    await actions.run('R1_R1FS_ADD', chunk('upload-a1', 0), meta('alice'))
    await actions.run('R1_R1FS_ADD', chunk('upload-a2', 0), meta('alice'))
    await expect(actions.run('R1_R1FS_ADD', chunk('upload-a3', 0), meta('alice'))).rejects.toThrow(/Too many R1FS uploads in progress from alice \(2\)/)
    // another sender is not held up by alice
    expect(await actions.run('R1_R1FS_ADD', chunk('upload-b1', 0), meta('bob'))).toMatchObject({RECEIVED: 1, CID: null})
    const done = await actions.run('R1_R1FS_ADD', chunk('upload-a1', 1), meta('alice'))
    expect(done!.CID).toEqual(expect.any(String))
    expect(await actions.run('R1_R1FS_ADD', chunk('upload-a3', 0), meta('alice'))).toMatchObject({RECEIVED: 1})
    // the same upload id from another sender is another upload
    await expect(actions.run('R1_R1FS_ADD', chunk('upload-a2', 1), meta('bob'))).rejects.toThrow(/No upload upload-a2 in progress/)
  })

  it('drops an upload idle for longer than the limit, spool file and all', async () => {
    now += 5000
    actions.expire()
    await expect(actions.run('R1_R1FS_ADD', chunk('upload-a2', 1), meta('alice'))).rejects.toThrow(/send it again from chunk 0/)
    await until(async () => (await readdir(join(root, 'spool'))).length === 0, 5000, 'the spool file to be removed')
  })
})

describe('an R1FS upload over the quota', () => {
  it('is refused at its first chunk, before the rest is sent: nothing spooled, nothing stored', async () => {
    const root = await mkdtemp(join(tmpdir(), 'r1-service-quota-'))
    const services = await openServices({dataDir: join(root, 'services'), quotaBytes: 256 * 1024})
    const actions = await ServiceActions.open(join(root, 'spool'), () => services, {perSender: 2, idleMs: 1000})
    try {
      await expect(actions.run('R1_R1FS_ADD', chunk('upload-big', 0), {hash: 'h', sender: 'alice'})).rejects.toThrow(/R1FS is full: the file does not fit in the 256 KiB quota/)
      expect(await readdir(join(root, 'spool'))).toEqual([])
      expect(await services.r1fs.list()).toEqual([])
      // the next chunk finds no upload: the client stops there
      await expect(actions.run('R1_R1FS_ADD', chunk('upload-big', 1), {hash: 'h', sender: 'alice'})).rejects.toThrow(/No upload upload-big in progress/)
    } finally {
      await actions.close()
      await services.cstore.close()
      await services.r1fs.close()
      await rm(root, {recursive: true, force: true})
    }
  })
})
