// CStore and R1FS through their HTTP APIs with the published Ratio1 client (@ratio1/edge-sdk-ts) against a real
// `r1 node start`: CStore operations per second next to the same client against a raw node:http server that
// answers without storing; R1FS add + get of a 20 MiB file next to writing (fsync) and reading the same bytes
// with `fs`. The same on the NATS JetStream backends when nats-server is installed. Needs the build (dist/).
import {spawn} from 'node:child_process'
import {mkdtempSync, openAsBlob, rmSync, writeFileSync} from 'node:fs'
import {open, readFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {root, row, startNode, stopChild} from './lib.js'
import {serverMissing, startNatsServer} from './servers.js'

// the client's CommonJS build: its 1.5.2 ESM build has extensionless imports plain Node cannot load
const {EdgeSdk} = createRequire(import.meta.url)('@ratio1/edge-sdk-ts')

const OPS = Number(process.env.R1_BENCH_CSTORE_OPS ?? 2000)
const CONCURRENCY = 16
const FILE_MIB = 20
const VALUE = {status: 'ok', n: 12345, tags: ['edge', 'r1'], nested: {a: 1, b: [true, null]}}
const HASH = Object.fromEntries(Array.from({length: 50}, (_, i) => [`field-${i}`, {...VALUE, i}]))

/** A node:http server in its own process answering as CStore would, without storing: the baseline. */
function echoServer() {
  const code = `
    import {createServer} from 'node:http'
    const envelope = (result) => JSON.stringify({result, server_node_addr: 'echo', evm_network: '', ee_node_alias: 'echo', ee_node_address: 'echo', ee_node_eth_address: '', ee_node_network: '', ee_node_ver: ''})
    const value = ${JSON.stringify(VALUE)}
    const hash = ${JSON.stringify(HASH)}
    const server = createServer((req, res) => {
      const chunks = []
      req.on('data', (chunk) => chunks.push(chunk))
      req.on('end', () => {
        const path = req.url.split('?')[0]
        const body = path === '/set' || path === '/hset' ? envelope(JSON.parse(Buffer.concat(chunks).toString()).value !== undefined) : envelope(path === '/hgetall' ? hash : value)
        res.writeHead(200, {'content-type': 'application/json', 'content-length': Buffer.byteLength(body)})
        res.end(body)
      })
    })
    server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({url: 'http://127.0.0.1:' + server.address().port})))`
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], {cwd: root, stdio: ['ignore', 'pipe', 'inherit']})
  return new Promise((resolve, reject) => {
    createInterface({input: proc.stdout}).once('line', (line) => resolve({proc, url: JSON.parse(line).url}))
    proc.once('exit', (code) => reject(new Error(`echo server exited ${code}`)))
  })
}

/** Runs `op(i)` for i < OPS with CONCURRENCY in flight; resolves with operations per second. */
async function perSecond(op) {
  let next = 0
  const start = process.hrtime.bigint()
  await Promise.all(
    Array.from({length: CONCURRENCY}, async () => {
      while (next < OPS) await op(next++)
    }),
  )
  return OPS / (Number(process.hrtime.bigint() - start) / 1e9)
}

/** set then get, and hset then hgetall of a 50-field hash, through the client: operations per second. */
async function cstoreFigures(url) {
  const {cstore} = new EdgeSdk({cstoreUrl: url, r1fsUrl: url})
  for (const [key, value] of Object.entries(HASH)) await cstore.hset({hkey: 'bench-hash', key, value})
  const setGet = await perSecond(async (i) => {
    if (!(await cstore.setValue({key: `bench/${i % 100}`, value: VALUE}))) throw new Error('set refused')
    if ((await cstore.getValue({key: `bench/${i % 100}`})) === null) throw new Error('get missed')
  })
  const hsetGetall = await perSecond(async (i) => {
    await cstore.hset({hkey: 'bench-hash', key: `field-${i % 50}`, value: {...VALUE, i: i % 50}})
    const all = await cstore.hgetall({hkey: 'bench-hash'})
    if (Object.keys(all).length !== 50) throw new Error(`hgetall of ${url} gave ${Object.keys(all).length} fields`)
  })
  return {setGet: setGet * 2, hsetGetall: hsetGetall * 2}
}

/** add then get of the file through the client, and fs write (fsync) then read of the same bytes: MiB/s of each. */
async function r1fsFigures(url, file, dir) {
  const {r1fs} = new EdgeSdk({cstoreUrl: url, r1fsUrl: url})
  const mib = (start) => (2 * FILE_MIB) / (Number(process.hrtime.bigint() - start) / 1e9)
  let start = process.hrtime.bigint()
  const {cid} = await r1fs.addFile({file: await openAsBlob(file), filename: 'bench.bin'})
  const res = await r1fs.getFile({cid})
  let size = 0
  for await (const chunk of res.body) size += chunk.length
  if (size !== FILE_MIB * 1024 * 1024) throw new Error(`got ${size} bytes back`)
  const service = mib(start)
  await r1fs.deleteFile({cid})
  const bytes = await readFile(file)
  start = process.hrtime.bigint()
  const copy = join(dir, 'fs-copy.bin')
  const handle = await open(copy, 'w')
  await handle.writeFile(bytes)
  await handle.sync()
  await handle.close()
  if ((await readFile(copy)).length !== bytes.length) throw new Error('fs read back short')
  return {service, fs: mib(start)}
}

/** Lowest ratios to the baselines: the client and HTTP dominate CStore; R1FS is measured against the page cache. */
const BUDGETS = {embedded: {cstore: 0.25, r1fs: 0.02}, 'NATS JetStream': {cstore: 0.25, r1fs: 0.01}}

async function figures(backend, node, echoUrl, file, dir) {
  const budget = BUDGETS[backend]
  const echo = await cstoreFigures(echoUrl)
  const cstore = await cstoreFigures(node.cstoreUrl)
  const files = await r1fsFigures(node.r1fsUrl, file, dir)
  return [
    row(`CStore set + get through the Ratio1 client (${backend})`, {value: cstore.setGet, unit: 'ops/s', baseline: echo.setGet, baselineName: 'raw node:http answering the same client', budget: budget.cstore, higherIsBetter: true}),
    row(`CStore hset + hgetall (50 fields) through the Ratio1 client (${backend})`, {value: cstore.hsetGetall, unit: 'ops/s', baseline: echo.hsetGetall, baselineName: 'raw node:http answering the same client', budget: budget.cstore, higherIsBetter: true}),
    row(`R1FS add + get of a ${FILE_MIB} MiB file through the Ratio1 client (${backend})`, {value: files.service, unit: 'MiB/s', baseline: files.fs, baselineName: 'fs write (fsync) + read of the same bytes', budget: budget.r1fs, higherIsBetter: true}),
  ]
}

export default async function services() {
  const dir = mkdtempSync(join(tmpdir(), 'r1-bench-services-'))
  const started = []
  try {
    const file = join(dir, 'bench.bin')
    const chunk = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) & 0xff
    writeFileSync(file, Buffer.concat(Array.from({length: FILE_MIB}, () => chunk)))
    const echo = await echoServer()
    started.push(() => stopChild(echo.proc))
    const node = await startNode(join(dir, 'embedded'))
    started.push(() => stopChild(node.child))
    const rows = await figures('embedded', node, echo.url, file, dir)
    const missing = serverMissing('nats-server')
    if (missing) {
      rows.push({figure: 'CStore and R1FS on NATS JetStream', error: missing})
      return rows
    }
    const nats = await startNatsServer()
    started.push(() => nats.stop())
    const natsNode = await startNode(join(dir, 'nats'), {}, ['--cstore', nats.url, '--r1fs', nats.url])
    started.push(() => stopChild(natsNode.child))
    rows.push(...(await figures('NATS JetStream', natsNode, echo.url, file, dir)))
    return rows
  } finally {
    for (const stop of started.reverse()) await stop()
    rmSync(dir, {recursive: true, force: true})
  }
}
