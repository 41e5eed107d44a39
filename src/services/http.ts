import {randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdir, mkdtemp, open, rm} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {ExitCode, R1Error} from '../errors.js'
import {isLoopback} from '../loopback.js'
import {MultipartError, MultipartFileTooLarge, multipartBoundary, readMultipart} from './multipart.js'
import {cidOf} from './r1fs-crypto.js'
import type {JsonValue, NodeServices} from './types.js'
import {formatBytes} from '../ui/bytes.js'

/**
 * CStore's and R1FS's HTTP APIs, as Ratio1 nodes serve them, so the published `@ratio1/edge-sdk-ts`
 * client (and any app speaking Ratio1's API) works unmodified. Every JSON answer is Ratio1's
 * envelope `{result, server_node_addr, ee_node_alias, ee_node_address, ee_node_ver, evm_network, …}`;
 * errors are the same envelope with `error` set and a 4xx/5xx status.
 */

export interface ServeServicesOptions {
  /** Interface both APIs listen on; default loopback. */
  host?: string
  /** Default 31234 (Ratio1's); 0 picks a free port. */
  cstorePort?: number
  /** Default 31235 (Ratio1's); 0 picks a free port. */
  r1fsPort?: number
  /** Who answers: goes in every response's envelope. */
  node: {address: string; alias: string; version: string}
  /** R1FS's quota in bytes: add_file uploads being spooled may take that much in all (undefined: no limit). */
  quotaBytes?: number
  /** Where add_file uploads are spooled (emptied at start, removed on close); default a new temp dir. Put it on disk, not tmpfs: files can be large. */
  spoolDir?: string
}

export interface ServicesHandle {
  cstoreUrl: string
  r1fsUrl: string
  close(): Promise<void>
}

/** JSON request bodies of the CStore API. */
const CSTORE_BODY_LIMIT = 8 * 1024 * 1024
/** JSON request bodies of the R1FS API (add_file_base64 carries a whole file): larger files go through add_file. */
const R1FS_BODY_LIMIT = 32 * 1024 * 1024
/** Files returned inside JSON (get_file_base64, get_yaml); larger ones are read with get_file. */
const INLINE_FILE_LIMIT = 16 * 1024 * 1024

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

type Envelope = (result: unknown, extra?: Record<string, unknown>) => Record<string, unknown>
type Route = (req: IncomingMessage, query: URLSearchParams) => Promise<unknown>
type Routes = Record<string, {method: 'GET' | 'POST'; run: Route} | {method: 'GET'; stream: (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => Promise<void>}>

export async function serveServices(services: NodeServices, options: ServeServicesOptions): Promise<ServicesHandle> {
  const host = options.host ?? '127.0.0.1'
  const envelope: Envelope = (result, extra = {}) => ({
    result,
    ...extra,
    server_node_addr: options.node.address,
    evm_network: 'r1',
    ee_node_alias: options.node.alias,
    ee_node_address: options.node.address,
    ee_node_eth_address: '',
    ee_node_network: 'r1',
    ee_node_ver: options.node.version,
  })
  const spoolDir = options.spoolDir ?? (await mkdtemp(join(tmpdir(), 'r1-r1fs-upload-')))
  if (options.spoolDir) {
    await rm(spoolDir, {recursive: true, force: true})
    await mkdir(spoolDir, {recursive: true, mode: 0o700})
  }
  const servers: Server[] = []
  try {
    const cstoreUrl = await listen(servers, cstoreRoutes(services), envelope, host, options.cstorePort ?? 31234, 'cstore')
    const r1fsUrl = await listen(servers, r1fsRoutes(services, options.node.alias, spoolDir, options.quotaBytes), envelope, host, options.r1fsPort ?? 31235, 'r1fs')
    let closing: Promise<void> | undefined
    return {
      cstoreUrl,
      r1fsUrl,
      close: () => (closing ??= (async () => {
        await Promise.all(servers.map(closeServer))
        await rm(spoolDir, {recursive: true, force: true})
      })()),
    }
  } catch (error) {
    await Promise.all(servers.map(closeServer))
    await rm(spoolDir, {recursive: true, force: true})
    throw error
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

async function listen(servers: Server[], routes: Routes, envelope: Envelope, host: string, port: number, what: 'cstore' | 'r1fs'): Promise<string> {
  const server = createServer((req, res) => void handle(routes, envelope, req, res, isLoopback(host)))
  servers.push(server)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  }).catch((error: NodeJS.ErrnoException) => {
    throw new R1Error(`Cannot serve ${what === 'cstore' ? 'CStore' : 'R1FS'} on ${host}:${port}: ${error.message}`, ExitCode.FAILURE, {
      code: error.code === 'EADDRINUSE' ? 'PORT_IN_USE' : 'LISTEN_FAILED',
      hint: `Pick another --${what}-port (0 picks a free one).`,
    })
  })
  const address = server.address() as {port: number}
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
}

async function handle(routes: Routes, envelope: Envelope, req: IncomingMessage, res: ServerResponse, loopback: boolean): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://services')
  const route = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : undefined
  try {
    if (loopback) refuseWebPages(req)
    if (!route) throw new HttpError(404, `No such endpoint ${url.pathname}: this API has ${Object.keys(routes).join(', ')}`)
    if (req.method !== route.method) throw new HttpError(405, `${url.pathname} takes ${route.method}, not ${req.method}`)
    if ('stream' in route) await route.stream(req, res, url.searchParams)
    else sendJson(res, 200, envelope(await route.run(req, url.searchParams)))
  } catch (error) {
    const status = error instanceof HttpError ? error.status : error instanceof R1Error && (error.code === 'R1FS_QUOTA' || error.code === 'CSTORE_FULL') ? 507 : 500
    if (res.headersSent) {
      res.destroy(error as Error)
      return
    }
    const message = (error as Error).message
    sendJson(res, status, envelope(null, {error: error instanceof R1Error && error.hint ? `${message}. ${error.hint}` : message}))
  } finally {
    // what the handler did not read of the request (a refused body) is drained, so the answer reaches the client
    if (!req.readableEnded) req.resume()
  }
}

/**
 * On loopback the APIs answer local programs only: a web page in a browser on this machine reaches
 * 127.0.0.1 too, through a cross-site request (its Origin names its site) or DNS rebinding (its Host
 * names the attacker's domain), so either naming anything but loopback is refused.
 */
function refuseWebPages(req: IncomingMessage): void {
  const hostname = (header: string) => {
    try {
      return new URL(header).hostname.replace(/^\[(.*)\]$/, '$1')
    } catch {
      return undefined
    }
  }
  const host = req.headers.host === undefined ? undefined : hostname(`http://${req.headers.host}`)
  if (host === undefined || !isLoopback(host)) throw new HttpError(403, `Host ${JSON.stringify(req.headers.host ?? '')} is not this node's loopback address: the API answers local programs only`)
  const origin = req.headers.origin
  if (origin !== undefined && !isLoopback(hostname(origin) ?? '')) throw new HttpError(403, `A request from the web page ${JSON.stringify(origin)} is refused: the API answers local programs only`)
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)})
  res.end(text)
}

async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? ''
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, `Send the body as JSON (Content-Type: application/json), not ${type || 'no Content-Type'}`)
  const declared = Number(req.headers['content-length'])
  const tooLarge = () => new HttpError(413, `The body exceeds ${formatBytes(limit)}`)
  if (declared > limit) throw tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req.iterator({destroyOnReturn: false})) {
    size += (chunk as Buffer).length
    if (size > limit) throw tooLarge()
    chunks.push(chunk as Buffer)
  }
  let body: unknown
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (error) {
    throw new HttpError(400, `The body is not valid JSON: ${(error as Error).message}`)
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'The body must be a JSON object')
  return body as Record<string, unknown>
}

function text(body: Record<string, unknown>, key: string, optional: true): string | undefined
function text(body: Record<string, unknown>, key: string, optional?: false): string
function text(body: Record<string, unknown>, key: string, optional = false): string | undefined {
  const value = body[key]
  if (value === undefined || value === null || value === '') {
    if (optional) return undefined
    throw new HttpError(400, `${key} is required (a non-empty string)`)
  }
  if (typeof value !== 'string') throw new HttpError(400, `${key} must be a string, not ${Array.isArray(value) ? 'an array' : typeof value}`)
  return value
}

function param(query: URLSearchParams, key: string): string {
  const value = query.get(key)
  if (!value) throw new HttpError(400, `The query parameter ${key} is required`)
  return value
}

function value(body: Record<string, unknown>): JsonValue {
  if (!('value' in body)) throw new HttpError(400, 'value is required (any JSON; null deletes)')
  return body.value as JsonValue
}

/**
 * Ratio1's CStore replicates a write to `chainstore_peers` and answers false when none confirms; an r1
 * node stores locally (or in the NATS bucket every node of the fleet shares), so `set` is true once the
 * value is durable and `chainstore_peers` is accepted and not needed.
 */
function cstoreRoutes({cstore}: NodeServices): Routes {
  return {
    '/get_status': {method: 'GET', run: async () => ({keys: await cstore.keys()})},
    '/set': {
      method: 'POST',
      async run(req) {
        const body = await readJson(req, CSTORE_BODY_LIMIT)
        return cstore.set(text(body, 'key'), value(body))
      },
    },
    '/get': {method: 'GET', run: async (_req, query) => cstore.get(param(query, 'key'))},
    '/hset': {
      method: 'POST',
      async run(req) {
        const body = await readJson(req, CSTORE_BODY_LIMIT)
        return cstore.hset(text(body, 'hkey'), text(body, 'key'), value(body))
      },
    },
    '/hget': {method: 'GET', run: async (_req, query) => cstore.hget(param(query, 'hkey'), param(query, 'key'))},
    '/hgetall': {method: 'GET', run: async (_req, query) => cstore.hgetall(param(query, 'hkey'))},
    '/hkeys': {method: 'GET', run: async (_req, query) => cstore.hkeys(param(query, 'hkey'))},
  }
}

/** `{"file": …}` as a header value: JSON with every non-ASCII character escaped (headers are latin1). */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function secretOf(source: Record<string, unknown> | URLSearchParams): string | undefined {
  const secret = source instanceof URLSearchParams ? source.get('secret') : source.secret
  if (secret === undefined || secret === null || secret === '') return undefined
  if (typeof secret !== 'string') throw new HttpError(400, 'secret must be a string')
  return secret
}

function r1fsRoutes({r1fs}: NodeServices, alias: string, spoolDir: string, quotaBytes: number | undefined): Routes {
  /** Bytes of add_file uploads on the spool now: never more than the quota, so an upload cannot fill the disk before R1FS refuses it. */
  let spooled = 0
  const notFound = (cid: string) => `No file ${cid} here (unknown cid, or a wrong or missing secret)`
  const readWhole = async (cid: string, secret: string | undefined) => {
    const file = await r1fs.get(cid, secret)
    if (!file) return undefined
    if (file.size > INLINE_FILE_LIMIT) throw new HttpError(413, `${cid} is ${file.size} bytes, over the ${formatBytes(INLINE_FILE_LIMIT)} returned inline: read it with get_file`)
    const chunks: Buffer[] = []
    for await (const chunk of file.stream()) chunks.push(chunk as Buffer)
    return {filename: file.filename, bytes: Buffer.concat(chunks)}
  }
  const document = (format: 'json' | 'yaml') => async (req: IncomingMessage) => {
    const body = await readJson(req, R1FS_BODY_LIMIT)
    if (body.data === undefined) throw new HttpError(400, 'data is required (the document to store)')
    const bytes = await documentBytes(format, body.data)
    const filename = text(body, 'fn', true) ?? `data.${format}`
    return {cid: await r1fs.add(bytes, {filename, secret: secretOf(body)})}
  }
  return {
    '/get_status': {
      method: 'GET',
      async run() {
        const files = await r1fs.list()
        return {EE_ID: alias, files: files.length, total_bytes: files.reduce((sum, f) => sum + f.size, 0)}
      },
    },
    '/add_file': {
      method: 'POST',
      async run(req) {
        const boundary = multipartBoundary(req.headers['content-type'])
        if (!boundary) throw new HttpError(415, 'Send the file as multipart/form-data with a boundary (a part `file`, and a part `body` with {"secret": …})')
        const spool = join(spoolDir, `${randomBytes(8).toString('hex')}.part`)
        const handle = await open(spool, 'wx', 0o600)
        let mine = 0
        const reserve = (bytes: number) => {
          if (quotaBytes !== undefined && spooled + bytes > quotaBytes) return false
          spooled += bytes
          mine += bytes
          return true
        }
        try {
          let upload
          try {
            upload = await readMultipart(req, boundary, handle, reserve)
          } catch (error) {
            if (error instanceof MultipartFileTooLarge) {
              throw new HttpError(507, `R1FS is full: the file does not fit in the ${formatBytes(quotaBytes!)} quota (counting uploads in progress). Delete files no longer needed (r1 r1fs rm <cid>), or start the node with a larger --r1fs-quota.`)
            }
            if (error instanceof MultipartError) throw new HttpError(400, `Malformed multipart body: ${error.message}`)
            throw error
          } finally {
            await handle.close()
          }
          if (upload.filename === undefined) throw new HttpError(400, 'The form has no file part (a part `file` with a filename)')
          let meta: Record<string, unknown> = {}
          if (upload.fields.body !== undefined) {
            try {
              meta = JSON.parse(upload.fields.body) as Record<string, unknown>
            } catch {
              throw new HttpError(400, 'The form part `body` is not JSON (expected {"secret": …, "filename": …})')
            }
            if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new HttpError(400, 'The form part `body` must be a JSON object')
          }
          const filename = text(meta, 'filename', true) ?? (upload.filename || 'file')
          const cid = await r1fs.add(createReadStream(spool), {filename, secret: secretOf(meta)})
          return {message: 'File uploaded successfully.', cid}
        } finally {
          await rm(spool, {force: true})
          spooled -= mine
        }
      },
    },
    '/add_file_base64': {
      method: 'POST',
      async run(req) {
        const body = await readJson(req, R1FS_BODY_LIMIT)
        const encoded = text(body, 'file_base64_str')
        if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(encoded)) throw new HttpError(400, 'file_base64_str is not base64')
        const filename = text(body, 'filename', true) ?? 'file'
        return {cid: await r1fs.add(Buffer.from(encoded, 'base64'), {filename, secret: secretOf(body)})}
      },
    },
    '/get_file': {
      method: 'GET',
      async stream(_req, res, query) {
        const cid = param(query, 'cid')
        const file = await r1fs.get(cid, secretOf(query))
        if (!file) throw new HttpError(404, notFound(cid))
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': file.size,
          'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(file.filename)}`,
          'x-meta': asciiJson({file: file.filename, filename: file.filename}),
        })
        await pipeline(file.stream(), res)
      },
    },
    '/get_file_base64': {
      method: 'POST',
      async run(req) {
        const body = await readJson(req, R1FS_BODY_LIMIT)
        const cid = text(body, 'cid')
        const file = await readWhole(cid, secretOf(body))
        return file ? {file_base64_str: file.bytes.toString('base64'), filename: file.filename} : {error: notFound(cid)}
      },
    },
    '/add_json': {method: 'POST', run: document('json')},
    '/add_yaml': {method: 'POST', run: document('yaml')},
    '/calculate_json_cid': {
      method: 'POST',
      async run(req) {
        const body = await readJson(req, R1FS_BODY_LIMIT)
        if (body.data === undefined) throw new HttpError(400, 'data is required (the document to address)')
        return {cid: cidOf(await documentBytes('json', body.data), text(body, 'fn', true) ?? 'data.json', secretOf(body))}
      },
    },
    '/get_yaml': {
      method: 'GET',
      async run(_req, query) {
        const cid = param(query, 'cid')
        const file = await readWhole(cid, secretOf(query))
        if (!file) throw new HttpError(404, notFound(cid))
        const {parse} = await import('yaml')
        try {
          return {file_data: parse(file.bytes.toString('utf8')) as unknown}
        } catch (error) {
          throw new HttpError(422, `${cid} is not YAML or JSON: ${(error as Error).message}`)
        }
      },
    },
    '/delete_file': {
      method: 'POST',
      async run(req) {
        const cid = text(await readJson(req, CSTORE_BODY_LIMIT), 'cid')
        const success = await r1fs.delete(cid)
        return {success, message: success ? `Deleted ${cid}.` : notFound(cid), cid}
      },
    },
    '/delete_files': {
      method: 'POST',
      async run(req) {
        const {cids} = await readJson(req, CSTORE_BODY_LIMIT)
        if (!Array.isArray(cids) || cids.length === 0 || cids.some((cid) => typeof cid !== 'string' || cid === '')) throw new HttpError(400, 'cids is required: a non-empty array of cids')
        const success: string[] = []
        const failed: string[] = []
        for (const cid of cids as string[]) ((await r1fs.delete(cid)) ? success : failed).push(cid)
        return {success, failed, total: cids.length, success_count: success.length, failed_count: failed.length}
      },
    },
  }
}

async function documentBytes(format: 'json' | 'yaml', data: unknown): Promise<Buffer> {
  if (format === 'json') return Buffer.from(JSON.stringify(data), 'utf8')
  const {stringify} = await import('yaml')
  return Buffer.from(stringify(data), 'utf8')
}
