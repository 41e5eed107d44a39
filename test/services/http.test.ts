// The CStore and R1FS HTTP APIs with raw requests: Ratio1's envelope, multipart variants, and every kind
// of malformed request getting a clear 4xx while what was stored stays as it was.
import {request} from 'node:http'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {openServices, serveServices, type NodeServices, type ServicesHandle} from '../../src/services/index.js'

let dir: string
let services: NodeServices
let served: ServicesHandle

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'r1-services-http-'))
  services = await openServices({dataDir: dir, quotaBytes: 4 * 1024 * 1024})
  served = await serveServices(services, {cstorePort: 0, r1fsPort: 0, quotaBytes: 4 * 1024 * 1024, node: {address: '0xai_test', alias: 'edge-t', version: '9.9.9'}})
})
afterAll(async () => {
  await served.close()
  await services.cstore.close()
  await services.r1fs.close()
  rmSync(dir, {recursive: true, force: true})
})

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
  json: any
}

/** A raw HTTP request (node:http, so that lying headers and odd bodies go out as written). */
function send(base: string, method: string, path: string, body?: Buffer | string, headers: Record<string, string | number> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), {method, headers}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const all = Buffer.concat(chunks)
        let json: unknown
        try {
          json = JSON.parse(all.toString('utf8'))
        } catch {
          json = undefined
        }
        resolve({status: res.statusCode!, headers: res.headers, body: all, json})
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

const postJson = (base: string, path: string, body: unknown) => send(base, 'POST', path, JSON.stringify(body), {'content-type': 'application/json'})

function form(boundary: string, parts: Array<{headers: string; body: Buffer | string}>, end = `--${boundary}--\r\n`): Buffer {
  const pieces: Buffer[] = []
  for (const part of parts) pieces.push(Buffer.from(`--${boundary}\r\n${part.headers}\r\n\r\n`), Buffer.from(part.body), Buffer.from('\r\n'))
  pieces.push(Buffer.from(end))
  return Buffer.concat(pieces)
}

describe('envelope and status', () => {
  it('answers in Ratio1’s envelope on both APIs', async () => {
    const status = await send(served.cstoreUrl, 'GET', '/get_status')
    expect(status.status).toBe(200)
    expect(status.json).toEqual({result: {keys: []}, server_node_addr: '0xai_test', evm_network: 'r1', ee_node_alias: 'edge-t', ee_node_address: '0xai_test', ee_node_eth_address: '', ee_node_network: 'r1', ee_node_ver: '9.9.9'})
    const r1fs = await send(served.r1fsUrl, 'GET', '/get_status')
    expect(r1fs.json).toMatchObject({result: {EE_ID: 'edge-t', files: 0, total_bytes: 0}, ee_node_alias: 'edge-t'})
  })
})

describe('web pages in a browser on the same machine', () => {
  it('are refused (403) through DNS rebinding (a foreign Host) or a cross-site request (a foreign Origin); nothing is read or stored', async () => {
    await postJson(served.cstoreUrl, '/set', {key: 'private', value: 'local only'})
    const port = (base: string) => new URL(base).port
    const cases: Array<[Promise<Reply>, RegExp]> = [
      [send(served.cstoreUrl, 'GET', '/get?key=private', undefined, {host: `rebind.example:${port(served.cstoreUrl)}`}), /Host "rebind\.example:\d+" is not this node's loopback address/],
      [send(served.r1fsUrl, 'GET', '/get_status', undefined, {host: `127.0.0.1.rebind.example:${port(served.r1fsUrl)}`}), /is not this node's loopback address/],
      [send(served.cstoreUrl, 'POST', '/set', JSON.stringify({key: 'private', value: 'page'}), {'content-type': 'application/json', origin: 'https://evil.example'}), /web page "https:\/\/evil\.example" is refused/],
      [send(served.r1fsUrl, 'POST', '/add_file', form('XX', [{headers: 'Content-Disposition: form-data; name="file"; filename="a"', body: 'page'}]), {'content-type': 'multipart/form-data; boundary=XX', origin: 'null'}), /web page "null" is refused/],
    ]
    const before = await services.r1fs.list()
    for (const [reply, message] of cases) {
      const {status, json} = await reply
      expect(status).toBe(403)
      expect(json).toMatchObject({result: null, error: expect.stringMatching(message)})
    }
    expect(await services.cstore.get('private')).toBe('local only')
    expect(await services.r1fs.list()).toEqual(before)
    // local programs name loopback (or send no Origin): they are served
    expect((await send(served.cstoreUrl, 'GET', '/get?key=private', undefined, {host: `localhost:${port(served.cstoreUrl)}`, origin: 'http://127.0.0.1:3000'})).json.result).toBe('local only')
  })
})

describe('multipart add_file', () => {
  it('takes the metadata part before or after the file, a quoted boundary, a UTF-8 file name, CRLFs inside the file', async () => {
    const bytes = Buffer.from('line\r\n--not-the-boundary\r\n\x00\xff end')
    const boundary = 'b0undary with space'
    const body = form(boundary, [
      {headers: 'Content-Disposition: form-data; name="body"', body: JSON.stringify({secret: 's3'})},
      {headers: 'Content-Disposition: form-data; name="file"; filename="ünï.bin"\r\nContent-Type: application/octet-stream', body: bytes},
    ])
    const added = await send(served.r1fsUrl, 'POST', '/add_file', body, {'content-type': `multipart/form-data; boundary="${boundary}"`})
    expect(added.status).toBe(200)
    expect(added.json.result).toEqual({message: 'File uploaded successfully.', cid: expect.stringMatching(/^[0-9a-f]{64}$/)})
    const got = await send(served.r1fsUrl, 'GET', `/get_file?cid=${added.json.result.cid}&secret=s3`)
    expect(got.status).toBe(200)
    expect(got.body.equals(bytes)).toBe(true)
    expect(JSON.parse(got.headers['x-meta'] as string)).toEqual({file: 'ünï.bin', filename: 'ünï.bin'})
    expect(got.headers['content-type']).toBe('application/octet-stream')
  })

  it.each([
    ['no boundary', 'multipart/form-data', Buffer.from('x'), 415, /multipart\/form-data with a boundary/],
    ['JSON instead of a form', 'application/json', Buffer.from('{}'), 415, /multipart\/form-data with a boundary/],
    ['no closing boundary', 'multipart/form-data; boundary=XX', form('XX', [{headers: 'Content-Disposition: form-data; name="file"; filename="a"', body: 'abc'}], ''), 400, /ends before its closing boundary/],
    ['garbage', 'multipart/form-data; boundary=XX', Buffer.alloc(20_000, 'z'), 400, /no multipart boundary where the form starts/],
    ['a part without Content-Disposition', 'multipart/form-data; boundary=XX', form('XX', [{headers: 'Content-Type: text/plain', body: 'abc'}]), 400, /has no Content-Disposition/],
    ['a filename* that is not percent-encoded UTF-8', 'multipart/form-data; boundary=XX', form('XX', [{headers: "Content-Disposition: form-data; name=\"file\"; filename*=utf-8''%E0%A4%A", body: 'abc'}]), 400, /filename\* is not valid percent-encoded UTF-8/],
    ['no file part', 'multipart/form-data; boundary=XX', form('XX', [{headers: 'Content-Disposition: form-data; name="body"', body: '{}'}]), 400, /no file part/],
    ['a body part that is not JSON', 'multipart/form-data; boundary=XX', form('XX', [{headers: 'Content-Disposition: form-data; name="file"; filename="a"', body: 'abc'}, {headers: 'Content-Disposition: form-data; name="body"', body: '{secret'}]), 400, /part `body` is not JSON/],
    ['huge text fields', 'multipart/form-data; boundary=XX', form('XX', [{headers: 'Content-Disposition: form-data; name="body"', body: 'x'.repeat(100_000)}]), 400, /text fields exceed/],
  ])('refuses %s with a clear error', async (_what, type, body, status, message) => {
    const before = (await services.r1fs.list()).length
    const reply = await send(served.r1fsUrl, 'POST', '/add_file', body, {'content-type': type})
    expect(reply.status).toBe(status)
    expect(reply.json).toMatchObject({result: null, error: expect.stringMatching(message), ee_node_alias: 'edge-t'})
    expect((await services.r1fs.list()).length).toBe(before)
  })

  it('refuses a file over the quota (507) and keeps what was stored', async () => {
    const before = await services.r1fs.list()
    const body = form('QQ', [{headers: 'Content-Disposition: form-data; name="file"; filename="big"', body: Buffer.alloc(5 * 1024 * 1024, 1)}])
    const reply = await send(served.r1fsUrl, 'POST', '/add_file', body, {'content-type': 'multipart/form-data; boundary=QQ'})
    expect(reply.status).toBe(507)
    expect(reply.json.error).toMatch(/R1FS is full: the file does not fit in the 4 MiB quota.*--r1fs-quota/)
    expect(await services.r1fs.list()).toEqual(before)
  })
})

describe('an upload far over the quota', () => {
  it('is refused (507) once its spooled bytes pass the quota, before the rest is written to disk', async () => {
    const before = await services.r1fs.list()
    const url = new URL('/add_file', served.r1fsUrl)
    let answered: ((reply: {status: number; body: string}) => void) | undefined
    const reply = new Promise<{status: number; body: string}>((resolve) => (answered = resolve))
    const req = request(url, {method: 'POST', headers: {'content-type': 'multipart/form-data; boundary=QQ'}}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => answered!({status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8')}))
    })
    req.on('error', () => undefined)
    let done = false
    void reply.then(() => (done = true))
    req.write('--QQ\r\nContent-Disposition: form-data; name="file"; filename="huge"\r\n\r\n')
    // 64 MiB of file against a 4 MiB quota, never closed: unbounded, all of it would go to the spool before any answer
    const chunk = Buffer.alloc(1024 * 1024, 7)
    const budget = 64 * chunk.length
    let sent = 0
    while (!done && sent < budget) {
      await new Promise<void>((resolve) => req.write(chunk, () => resolve()))
      sent += chunk.length
    }
    req.destroy()
    expect(sent).toBeLessThan(budget)
    const {status, body} = await reply
    expect(status).toBe(507)
    expect(JSON.parse(body).error).toMatch(/R1FS is full: the file does not fit in the 4 MiB quota.*--r1fs-quota/)
    expect(await services.r1fs.list()).toEqual(before)
    // the room is given back: a small file still fits
    const small = form('QQ', [{headers: 'Content-Disposition: form-data; name="file"; filename="small"', body: 'fits'}])
    expect((await send(served.r1fsUrl, 'POST', '/add_file', small, {'content-type': 'multipart/form-data; boundary=QQ'})).status).toBe(200)
  })
})

describe('malformed requests', () => {
  it('gets a clear 4xx for bad JSON, a wrong type, a missing field or parameter, a huge body, an unknown path or method; nothing stored changes', async () => {
    await postJson(served.cstoreUrl, '/set', {key: 'stay', value: {v: 1}})
    await postJson(served.cstoreUrl, '/hset', {hkey: 'h', key: 'stay', value: 2})
    const cases: Array<[Promise<Reply>, number, RegExp]> = [
      [send(served.cstoreUrl, 'POST', '/set', '{"key": "stay", "value": ', {'content-type': 'application/json'}), 400, /not valid JSON/],
      [send(served.cstoreUrl, 'POST', '/set', '[1]', {'content-type': 'application/json'}), 400, /must be a JSON object/],
      [send(served.cstoreUrl, 'POST', '/set', 'key=stay', {'content-type': 'application/x-www-form-urlencoded'}), 415, /as JSON/],
      [postJson(served.cstoreUrl, '/set', {key: 'stay'}), 400, /value is required/],
      [postJson(served.cstoreUrl, '/set', {key: 7, value: 1}), 400, /key must be a string/],
      [postJson(served.cstoreUrl, '/set', {key: '', value: 1}), 400, /key is required/],
      [postJson(served.cstoreUrl, '/hset', {hkey: 'h', value: 1}), 400, /key is required/],
      [send(served.cstoreUrl, 'GET', '/get'), 400, /query parameter key is required/],
      [send(served.cstoreUrl, 'GET', '/hget?hkey=h'), 400, /query parameter key is required/],
      [send(served.cstoreUrl, 'POST', '/set', Buffer.alloc(9 * 1024 * 1024, 'a'), {'content-type': 'application/json'}), 413, /exceeds 8 MiB/],
      [send(served.cstoreUrl, 'GET', '/set'), 405, /takes POST, not GET/],
      [send(served.cstoreUrl, 'GET', '/nope'), 404, /No such endpoint \/nope: this API has \/get_status, \/set/],
      [send(served.cstoreUrl, 'GET', '/__proto__'), 404, /No such endpoint/],
      [postJson(served.r1fsUrl, '/add_file_base64', {file_base64_str: 'not base64!'}), 400, /not base64/],
      [postJson(served.r1fsUrl, '/add_json', {fn: 'x.json'}), 400, /data is required/],
      [postJson(served.r1fsUrl, '/delete_files', {cids: []}), 400, /non-empty array/],
      [send(served.r1fsUrl, 'GET', `/get_file?cid=${'0'.repeat(64)}`), 404, /No file 0{64} here/],
      [send(served.r1fsUrl, 'GET', '/get_file?cid=../../etc/passwd'), 404, /No file/],
      [send(served.r1fsUrl, 'GET', `/get_yaml?cid=${'1'.repeat(64)}`), 404, /No file/],
    ]
    for (const [reply, status, message] of cases) {
      const {status: got, json} = await reply
      expect({got, error: json?.error}).toEqual({got: status, error: expect.stringMatching(message)})
    }
    expect(await services.cstore.get('stay')).toEqual({v: 1})
    expect(await services.cstore.hgetall('h')).toEqual({stay: 2})
  })

  it('answers a miss of get_file_base64 with 200 and error set, as Ratio1 does; delete of an unknown cid is success false', async () => {
    const miss = await postJson(served.r1fsUrl, '/get_file_base64', {cid: 'f'.repeat(64), secret: 'x'})
    expect(miss.status).toBe(200)
    expect(miss.json.result).toEqual({error: expect.stringMatching(/No file f{64} here/)})
    const gone = await postJson(served.r1fsUrl, '/delete_file', {cid: 'f'.repeat(64)})
    expect(gone.json.result).toMatchObject({success: false, cid: 'f'.repeat(64)})
  })

  it('refuses a non-YAML file in get_yaml with 422', async () => {
    const added = await postJson(served.r1fsUrl, '/add_file_base64', {file_base64_str: Buffer.from('key: [unclosed').toString('base64'), filename: 'bad.yaml'})
    const reply = await send(served.r1fsUrl, 'GET', `/get_yaml?cid=${added.json.result.cid}`)
    expect(reply.status).toBe(422)
    expect(reply.json.error).toMatch(/is not YAML or JSON/)
  })
})

describe('files too large to return inside JSON', () => {
  it('get_file_base64 and get_yaml refuse a file over 16 MiB with 413, pointing to get_file, which streams it', async () => {
    const bigDir = mkdtempSync(join(tmpdir(), 'r1-services-http-big-'))
    const big = await openServices({dataDir: bigDir})
    const bigServed = await serveServices(big, {cstorePort: 0, r1fsPort: 0, node: {address: '0xai_test', alias: 'edge-t', version: '9.9.9'}})
    try {
      const cid = await big.r1fs.add(Buffer.alloc(17 * 1024 * 1024, 0x41), {filename: 'big.yaml'})
      for (const reply of [await postJson(bigServed.r1fsUrl, '/get_file_base64', {cid}), await send(bigServed.r1fsUrl, 'GET', `/get_yaml?cid=${cid}`)]) {
        expect(reply.status).toBe(413)
        expect(reply.json.error).toMatch(new RegExp(`${cid} is 17825792 bytes, over the 16 MiB returned inline: read it with get_file`))
      }
      const streamed = await send(bigServed.r1fsUrl, 'GET', `/get_file?cid=${cid}`)
      expect(streamed.body.length).toBe(17 * 1024 * 1024)
    } finally {
      await bigServed.close()
      await big.cstore.close()
      await big.r1fs.close()
      rmSync(bigDir, {recursive: true, force: true})
    }
  })
})
