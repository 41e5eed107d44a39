import {join} from 'node:path'
import {LogCStore} from './cstore-log.js'
import type {ServiceUrls} from './env.js'
import {serveServices, type ServeServicesOptions, type ServicesHandle} from './http.js'
import {BlobR1fs, type BlobStore} from './r1fs.js'
import {LocalBlobStore} from './r1fs-local.js'
import type {CStore, NodeServices} from './types.js'

export type {CStore, JsonValue, NodeServices, R1fs, R1fsEntry, R1fsFile} from './types.js'
export {serveServices, type ServeServicesOptions, type ServicesHandle} from './http.js'
export {servicesEnv, type ServiceUrls} from './env.js'

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
    const store: BlobStore = options.r1fs ? await (await import('./nats.js')).NatsBlobStore.open(options.r1fs) : await LocalBlobStore.open(join(options.dataDir, 'r1fs', 'files'))
    const r1fs = await BlobR1fs.open(store, {spoolDir: join(options.dataDir, 'r1fs', 'spool'), quotaBytes: options.quotaBytes})
    return {cstore, r1fs}
  } catch (error) {
    await cstore.close()
    throw error
  }
}

async function openCStore(options: OpenServicesOptions): Promise<CStore> {
  if (!options.cstore) return LogCStore.open(join(options.dataDir, 'cstore'))
  return (await import('./nats.js')).NatsCStore.open(options.cstore)
}


/** What a node is told about its services: backends, quota, where the HTTP APIs listen. */
export type NodeServicesOptions = Omit<OpenServicesOptions, 'dataDir'> & Omit<ServeServicesOptions, 'node' | 'spoolDir'>

export interface RunningServices extends ServiceUrls {
  services: NodeServices
  /** Stops the HTTP APIs, then closes the backends (pending writes complete first). */
  close(): Promise<void>
}

/** Opens the services on the data dir (or NATS) and serves their HTTP APIs (uploads spooled in `r1fs/uploads/`); what was opened is closed again when serving fails. */
export async function startServices(dataDir: string, options: NodeServicesOptions, node: ServeServicesOptions['node']): Promise<RunningServices> {
  const services = await openServices({...options, dataDir})
  const closeBackends = async () => {
    await services.cstore.close()
    await services.r1fs.close()
  }
  let served: ServicesHandle
  try {
    served = await serveServices(services, {...options, node, spoolDir: join(dataDir, 'r1fs', 'uploads')})
  } catch (error) {
    await closeBackends()
    throw error
  }
  return {
    services,
    cstoreUrl: served.cstoreUrl,
    r1fsUrl: served.r1fsUrl,
    async close() {
      await served.close()
      await closeBackends()
    },
  }
}
