import {join} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {LogCStore} from './cstore-log.js'
import {BlobR1fs, type BlobStore} from './r1fs.js'
import {LocalBlobStore} from './r1fs-local.js'
import type {CStore, NodeServices} from './types.js'

export type {CStore, JsonValue, NodeServices, R1fs, R1fsEntry, R1fsFile} from './types.js'
export {serveServices, type ServeServicesOptions, type ServicesHandle} from './http.js'

export interface OpenServicesOptions {
  /** The node's data dir: the embedded backends keep `cstore/` and `r1fs/` in it (and R1FS spools uploads there). */
  dataDir: string
  /** `nats://host:port`: CStore in that NATS's JetStream key-value bucket; undefined: embedded. */
  cstore?: string
  /** `nats://host:port`: R1FS in that NATS's JetStream object store; undefined: embedded. */
  r1fs?: string
  /** Space all R1FS files may take, in bytes; undefined: no limit. */
  quotaBytes?: number
}

/** Opens the node's CStore and R1FS (embedded on the data dir, or on NATS). */
export async function openServices(options: OpenServicesOptions): Promise<NodeServices> {
  const cstore = await openCStore(options)
  try {
    const store: BlobStore = options.r1fs ? await (await import('./nats.js')).NatsBlobStore.open(natsUrl(options.r1fs, 'r1fs')) : await LocalBlobStore.open(join(options.dataDir, 'r1fs', 'files'))
    const r1fs = await BlobR1fs.open(store, {spoolDir: join(options.dataDir, 'r1fs', 'spool'), quotaBytes: options.quotaBytes})
    return {cstore, r1fs}
  } catch (error) {
    await cstore.close()
    throw error
  }
}

async function openCStore(options: OpenServicesOptions): Promise<CStore> {
  if (!options.cstore) return LogCStore.open(join(options.dataDir, 'cstore'))
  return (await import('./nats.js')).NatsCStore.open(natsUrl(options.cstore, 'cstore'))
}

function natsUrl(url: string, what: string): string {
  if (!/^(nats|tls):\/\/[^\s/]+\/?$/.test(url)) {
    throw new R1Error(`--${what} ${url}: not a NATS URL`, ExitCode.USAGE, {code: 'NATS_URL', hint: `Pass --${what} nats://host:4222 (or leave it out for the embedded store on the data dir).`})
  }
  return url
}
