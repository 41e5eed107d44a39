import type {ServiceUrls} from '../services/env.js'
import type {JsonValue} from '../services/types.js'
import type {PluginCStore, PluginR1fs, R1fsFileData} from './define.js'

/**
 * `ctx.cstore` and `ctx.r1fs`: a small HTTP client of the node's CStore and R1FS APIs (Ratio1's, the
 * paths `@ratio1/edge-sdk-ts` calls), at the URLs the node gives every instance in its environment
 * (`EE_CHAINSTORE_API_URL` / `CSTORE_API_URL`, `EE_R1FS_API_URL` / `R1FS_API_URL`). Each response is
 * `{result, …}`; the client returns `result`.
 */

/** The clients; `urls` may resolve later (testPlugin starts its services on first use). */
export function serviceClients(urls: () => Promise<Partial<ServiceUrls>> | Partial<ServiceUrls>): {cstore: PluginCStore; r1fs: PluginR1fs} {
  const base = async (service: 'cstore' | 'r1fs'): Promise<string> => {
    const url = (await urls())[service === 'cstore' ? 'cstoreUrl' : 'r1fsUrl']
    if (!url) {
      const names = service === 'cstore' ? 'EE_CHAINSTORE_API_URL (or CSTORE_API_URL)' : 'EE_R1FS_API_URL (or R1FS_API_URL)'
      throw new Error(`ctx.${service} has no ${service === 'cstore' ? 'CStore' : 'R1FS'} API to talk to: ${names} is not set in this instance's environment (a node and \`r1 run\` set it)`)
    }
    return url.replace(/\/+$/, '')
  }
  const call = async <T>(service: 'cstore' | 'r1fs', path: string, init?: {json?: unknown; form?: FormData; query?: Record<string, string | undefined>}): Promise<T> => {
    const response = await request(await base(service), path, init)
    return (await resultOf(response, path)) as T
  }
  const cstore: PluginCStore = {
    get: (key) => call('cstore', '/get', {query: {key}}),
    set: async (key, value) => Boolean(await call('cstore', '/set', {json: {key, value: toJson(value), chainstore_peers: []}})),
    hget: (hkey, field) => call('cstore', '/hget', {query: {hkey, key: field}}),
    hset: async (hkey, field, value) => Boolean(await call('cstore', '/hset', {json: {hkey, key: field, value: toJson(value), chainstore_peers: []}})),
    hgetall: async <T extends JsonValue>(hkey: string) => (await call<Record<string, T> | null>('cstore', '/hgetall', {query: {hkey}})) ?? {},
    hkeys: async (hkey) => (await call<string[] | null>('cstore', '/hkeys', {query: {hkey}})) ?? [],
  }
  const getFile = async (cid: string, secret?: string): Promise<R1fsFileData | undefined> => {
    const response = await request(await base('r1fs'), '/get_file', {query: {cid, secret}, missing: true})
    if (response.status === 404) return undefined
    if ((response.headers.get('content-type') ?? '').includes('application/json')) {
      await resultOf(response, '/get_file')
      return undefined
    }
    const data = Buffer.from(await response.arrayBuffer())
    let filename = cid
    try {
      const meta = JSON.parse(response.headers.get('x-meta') ?? '{}') as {filename?: unknown}
      if (typeof meta.filename === 'string') filename = meta.filename
    } catch {
      // no usable x-meta: the cid names the file
    }
    return {data, filename}
  }
  const r1fs: PluginR1fs = {
    addFile: async (data, options) => {
      if (!options || typeof options.filename !== 'string' || options.filename === '') throw new TypeError('ctx.r1fs.addFile(data, {filename, secret?}) needs a filename')
      const bytes = typeof data === 'string' ? Buffer.from(data) : data
      const form = new FormData()
      form.append('file', new Blob([bytes]), options.filename)
      form.append('body', JSON.stringify({filename: options.filename, ...(options.secret ? {secret: options.secret} : {})}))
      return cidOf(await call('r1fs', '/add_file', {form}), '/add_file')
    },
    addJson: async (data, options = {}) => cidOf(await call('r1fs', '/add_json', {json: {data: toJson(data), ...(options.filename ? {fn: options.filename} : {}), ...(options.secret ? {secret: options.secret} : {})}}), '/add_json'),
    addYaml: async (data, options = {}) => cidOf(await call('r1fs', '/add_yaml', {json: {data: toJson(data), ...(options.filename ? {fn: options.filename} : {}), ...(options.secret ? {secret: options.secret} : {})}}), '/add_yaml'),
    getFile: (cid, options = {}) => getFile(cid, options.secret),
    getJson: async <T>(cid: string, options: {secret?: string} = {}) => {
      const file = await getFile(cid, options.secret)
      if (!file) return undefined
      try {
        return JSON.parse(file.data.toString('utf8')) as T
      } catch (error) {
        throw new Error(`R1FS file ${cid} (${file.filename}) is not JSON: ${(error as Error).message}`)
      }
    },
    getYaml: async <T>(cid: string, options: {secret?: string} = {}) => {
      const response = await request(await base('r1fs'), '/get_yaml', {query: {cid, secret: options.secret}, missing: true})
      if (response.status === 404) return undefined
      const result = (await resultOf(response, '/get_yaml')) as {file_data?: unknown} | null
      return (result?.file_data ?? undefined) as T | undefined
    },
    delete: async (cid) => {
      const result = (await call('r1fs', '/delete_file', {json: {cid}})) as {success?: unknown} | boolean | null
      return typeof result === 'boolean' ? result : result?.success === true
    },
  }
  return {cstore, r1fs}
}

/** Values go to the API as JSON: a value JSON cannot carry is refused here, with the reason. */
function toJson(value: unknown): JsonValue {
  if (value === undefined) throw new TypeError('the value is undefined: store null to delete, or a JSON value')
  try {
    return JSON.parse(JSON.stringify(value)) as JsonValue
  } catch (error) {
    throw new TypeError(`the value is not JSON: ${(error as Error).message}`)
  }
}

async function request(base: string, path: string, init: {json?: unknown; form?: FormData; query?: Record<string, string | undefined>; missing?: boolean} = {}): Promise<Response> {
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(init.query ?? {})) if (value !== undefined) query.append(key, value)
  const url = `${base}${path}${query.size > 0 ? `?${query}` : ''}`
  let response: Response
  try {
    response = await fetch(url, init.json !== undefined ? {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(init.json)} : init.form ? {method: 'POST', body: init.form} : {method: 'GET'})
  } catch (error) {
    throw new Error(`${path} at ${base} failed: ${(error as Error & {cause?: Error}).cause?.message ?? (error as Error).message}`)
  }
  if (!response.ok && !(init.missing && response.status === 404)) {
    const text = await response.text().catch(() => '')
    throw new Error(`${path} at ${base} answered HTTP ${response.status}${text ? `: ${text.slice(0, 300)}` : ''}`)
  }
  return response
}

/** `result` of a Ratio1 API response; an `error` it reports is thrown. */
async function resultOf(response: Response, path: string): Promise<unknown> {
  const body = (await response.json().catch(() => undefined)) as {result?: unknown; error?: unknown} | undefined
  if (!body || typeof body !== 'object') throw new Error(`${path} answered with no JSON body`)
  const result = body.result as {error?: unknown} | undefined
  const error = body.error ?? (result && typeof result === 'object' ? result.error : undefined)
  if (typeof error === 'string' && error !== '') throw new Error(`${path}: ${error}`)
  return body.result ?? null
}

function cidOf(result: unknown, path: string): string {
  const cid = (result as {cid?: unknown} | null)?.cid
  if (typeof cid !== 'string' || cid === '') throw new Error(`${path} answered without a cid`)
  return cid
}
