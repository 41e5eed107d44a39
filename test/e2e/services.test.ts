// CStore and R1FS end to end: the built CLI (`r1 cstore …`, `r1 r1fs …`) against a real `r1 node start`,
// a plugin using ctx.cstore / ctx.r1fs deployed on that node and under `r1 run`, and what is refused.
import {createHash, randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {R1FS_CHUNK_BYTES} from '../../src/protocol/services.js'
import {type NodeProcess, bin, cliIdentity, r1, repoRoot, startNode, tempRoot} from '../deploy/nodes.js'
import {until} from '../runtime/helpers.js'

const root = tempRoot('r1-e2e-services-')
const project = join(root.dir, 'project')
let env: Record<string, string>
let stranger: {env: Record<string, string>; address: string}
let node: NodeProcess

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')
const cli = (args: string[], options: {env?: Record<string, string>} = {}) => r1([...args, '--target', 'edge-a', '--dir', project], {env: options.env ?? env})

beforeAll(async () => {
  const me = await cliIdentity(root.dir)
  env = me.env
  stranger = await cliIdentity(root.dir, 'stranger')
  node = await startNode({dataDir: join(root.dir, 'node'), allow: [me.address]})
  mkdirSync(join(project, 'src'), {recursive: true})
  writeFileSync(
    join(project, 'src/archivist.ts'),
    `import {definePlugin} from 'r1/plugin'
export default definePlugin({
  async process(ctx) {
    const runs = ((await ctx.cstore.get<number>('archivist:runs')) ?? 0) + 1
    await ctx.cstore.set('archivist:runs', runs)
    const cid = await ctx.r1fs.addFile('hello from ' + ctx.instanceId, {filename: 'hello.txt'})
    await ctx.cstore.hset('archivist:files', ctx.instanceId, cid)
    const back = await ctx.r1fs.getFile(cid)
    return {RUNS: runs, CID: cid, BACK: back?.data.toString('utf8'), FIELDS: await ctx.cstore.hkeys('archivist:files')}
  },
})
`,
  )
  writeFileSync(
    join(project, 'config.yaml'),
    `name: archive
version: 0.1.0
plugins:
  ARCHIVIST:
    entry: src/archivist.ts
    description: Counts its runs in CStore and stores a file in R1FS
pipelines:
  archive:
    type: Void
    instances:
      arch-1:
        plugin: ARCHIVIST
        config: { process_delay: 1 }
targets:
  edge-a: { url: "${node.url}", address: "${node.address}" }
`,
  )
}, 120_000)

afterAll(async () => {
  await node?.stop()
  root.dispose()
})

describe('r1 cstore', () => {
  it('sets and reads JSON values, hashes and fields, and deletes with null', async () => {
    expect((await cli(['cstore', 'set', 'app:limits', '{"max": 30, "units": ["C"]}'])).exitCode).toBe(0)
    const got = await cli(['cstore', 'get', 'app:limits'])
    expect(got.exitCode, got.stderr).toBe(0)
    expect(JSON.parse(got.stdout)).toEqual({max: 30, units: ['C']})
    const json = await cli(['cstore', 'get', 'app:limits', '--json'])
    expect(json.json).toMatchObject({ok: true, exitCode: 0, targets: [{target: 'edge-a', status: 'ok', result: {key: 'app:limits', value: {max: 30, units: ['C']}}}]})
    expect((await cli(['cstore', 'set', 'app:mode', 'fast', '--string'])).exitCode).toBe(0)
    expect((await cli(['cstore', 'get', 'app:mode'])).stdout).toBe('"fast"')
    expect((await cli(['cstore', 'hset', 'sensors', 'temp-1', '21.5'])).exitCode).toBe(0)
    expect((await cli(['cstore', 'hset', 'sensors', 'temp 2/ü', '"x"'])).exitCode).toBe(0)
    expect((await cli(['cstore', 'hget', 'sensors', 'temp 2/ü'])).stdout).toBe('"x"')
    expect((await cli(['cstore', 'hgetall', 'sensors', '--json'])).json.targets[0].result).toEqual({hkey: 'sensors', fields: {'temp-1': 21.5, 'temp 2/ü': 'x'}})
    const deleted = await cli(['cstore', 'hset', 'sensors', 'temp-1', 'null', '--json'])
    expect(deleted.json.targets[0].result).toEqual({hkey: 'sensors', field: 'temp-1', stored: true, deleted: true})
    expect((await cli(['cstore', 'hgetall', 'sensors'])).stdout).toBe(JSON.stringify({'temp 2/ü': 'x'}, null, 2))
    expect((await cli(['cstore', 'hkeys', 'sensors'])).stdout).toBe(JSON.stringify(['temp 2/ü'], null, 2))
    expect((await cli(['cstore', 'hkeys', 'no such hash', '--json'])).json.targets[0].result).toEqual({hkey: 'no such hash', fields: []})
    // a value from stdin
    const piped = await execa(process.execPath, [bin, 'cstore', 'set', 'app:list', '-', '--target', 'edge-a', '--dir', project], {cwd: repoRoot, env: {NO_COLOR: '1', CI: '1', ...env}, reject: false, input: '[1, 2, 3]\n'})
    expect(piped.exitCode, piped.stderr).toBe(0)
    expect((await cli(['cstore', 'get', 'app:list'])).stdout).toBe('[1,2,3]')
  })

  it('a key that is not set exits 1 naming it; text that is not JSON exits 2 and stores nothing', async () => {
    const missing = await cli(['cstore', 'get', 'never:set'])
    expect(missing.exitCode).toBe(1)
    expect(missing.stderr).toContain('Key "never:set" is not set')
    const missingJson = await cli(['cstore', 'hget', 'sensors', 'nope', '--json'])
    expect(missingJson.exitCode).toBe(1)
    expect(missingJson.json.targets[0]).toMatchObject({status: 'failed', error: expect.stringContaining('"nope"')})
    const notJson = await cli(['cstore', 'set', 'app:word', 'hello', '--json'])
    expect(notJson.exitCode).toBe(2)
    expect(notJson.json.error).toMatchObject({code: 'VALUE_NOT_JSON', hint: expect.stringContaining('--string')})
    expect((await cli(['cstore', 'get', 'app:word'])).exitCode).toBe(1)
  })

  it('a key the node does not allow is refused (exit 4), and changes nothing', async () => {
    const refused = await cli(['cstore', 'set', 'app:mode', '"stranger"', '--json'], {env: stranger.env})
    expect(refused.exitCode).toBe(4)
    expect(refused.json.targets[0]).toMatchObject({status: 'rejected', error: expect.stringContaining('allow')})
    expect((await cli(['cstore', 'get', 'app:mode'], {env: stranger.env})).exitCode).toBe(4)
    expect((await cli(['r1fs', 'ls'], {env: stranger.env})).exitCode).toBe(4)
    expect((await cli(['cstore', 'get', 'app:mode'])).stdout).toBe('"fast"')
  })
})

describe('r1 r1fs', () => {
  const bytes = randomBytes(2 * R1FS_CHUNK_BYTES + 777)
  bytes[0] = 0x00
  bytes[1] = 0xff

  it('adds a file bigger than one frame encrypted with a secret from a file, lists, gets it back, deletes it', async () => {
    const file = join(root.dir, 'model.bin')
    writeFileSync(file, bytes)
    writeFileSync(join(root.dir, 'secret.txt'), 'correct horse\n')
    const added = await cli(['r1fs', 'add', file, '--secret-file', join(root.dir, 'secret.txt'), '--json'])
    expect(added.exitCode, added.stderr).toBe(0)
    const {cid, size, encrypted} = added.json.targets[0].result
    expect({size, encrypted}).toEqual({size: bytes.length, encrypted: true})
    const listed = await cli(['r1fs', 'ls', '--json'])
    expect(listed.json.targets[0].result.files).toContainEqual({cid, filename: 'model.bin', size: bytes.length, encrypted: true, added: expect.any(String)})

    const out = join(root.dir, 'back.bin')
    const got = await cli(['r1fs', 'get', cid, '--secret-file', join(root.dir, 'secret.txt'), '-o', out])
    expect(got.exitCode, got.stderr).toBe(0)
    expect(sha(readFileSync(out))).toBe(sha(bytes))
    // the same secret on stdin
    const piped = await execa(process.execPath, [bin, 'r1fs', 'get', cid, '--secret-stdin', '-o', '-', '--target', 'edge-a', '--dir', project], {cwd: repoRoot, env: {NO_COLOR: '1', CI: '1', ...env}, reject: false, input: 'correct horse', encoding: 'buffer'})
    expect(piped.exitCode).toBe(0)
    expect(sha(piped.stdout)).toBe(sha(bytes))
    // an existing file is kept without --force
    const again = await cli(['r1fs', 'get', cid, '--secret-file', join(root.dir, 'secret.txt'), '-o', out])
    expect(again.exitCode).toBe(1)
    expect(again.stderr).toContain('already exists')

    const wrong = await cli(['r1fs', 'get', cid, '--secret-env', 'WRONG_SECRET', '-o', join(root.dir, 'wrong.bin'), '--json'], {env: {...env, WRONG_SECRET: 'battery staple'}})
    expect(wrong.exitCode).toBe(1)
    expect(wrong.json.targets[0]).toMatchObject({status: 'failed', error: expect.stringContaining('or the secret is wrong')})
    expect(existsSync(join(root.dir, 'wrong.bin'))).toBe(false)

    expect((await cli(['r1fs', 'rm', cid])).exitCode).toBe(0)
    const gone = await cli(['r1fs', 'rm', cid, '--json'])
    expect(gone.exitCode).toBe(1)
    expect(gone.json.targets[0].error).toContain('No file')
  })

  it('a secret never comes from the command line, and a missing file is a usage error', async () => {
    const flag = await cli(['r1fs', 'add', join(root.dir, 'model.bin'), '--secret', 'in-history'])
    expect(flag.exitCode).toBe(2)
    const missing = await cli(['r1fs', 'add', join(root.dir, 'no-such-file'), '--json'])
    expect(missing.exitCode).toBe(2)
    expect(missing.json.error.code).toBe('FILE_UNREADABLE')
    const twoWays = await cli(['r1fs', 'add', join(root.dir, 'model.bin'), '--secret-env', 'X', '--secret-file', 'y', '--json'])
    expect(twoWays.exitCode).toBe(2)
    expect(twoWays.json.error.code).toBe('SECRET_SOURCES')
    // a second node (never contacted: the selection is refused first)
    const twoTargets = await cli(['r1fs', 'get', 'a'.repeat(64), '--node', 'ws://127.0.0.1:9', '--address', stranger.address, '--json'])
    expect(twoTargets.exitCode).toBe(2)
    expect(twoTargets.json.error.code).toBe('ONE_TARGET')
  })
})

describe('ctx.cstore and ctx.r1fs in a plugin', () => {
  it('on a node: what the deployed plugin stores, the CLI reads', async () => {
    const deployed = await r1(['deploy', '--target', 'edge-a', '--dir', project, '--json'], {env})
    expect(deployed.exitCode, deployed.stderr + deployed.stdout).toBe(0)
    await until(async () => (await cli(['cstore', 'get', 'archivist:runs'])).exitCode === 0, 30_000)
    const files = await cli(['cstore', 'hgetall', 'archivist:files', '--json'])
    const cid = files.json.targets[0].result.fields['arch-1']
    expect(typeof cid).toBe('string')
    const got = await cli(['r1fs', 'get', cid, '-o', '-'])
    expect(got.stdout).toBe('hello from arch-1')
    expect((await r1(['pipelines', 'delete', 'archive', '--yes', '--target', 'edge-a', '--dir', project], {env})).exitCode).toBe(0)
  })

  it('under r1 run: the same calls work against its embedded services', async () => {
    const run = await r1(['run', '--dir', project, '--once', '--json'], {env})
    expect(run.exitCode, run.stderr).toBe(0)
    const payload = run.stdout
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line))
      .find((event) => event.EE_EVENT_TYPE === 'PAYLOAD')
    expect(payload).toMatchObject({RUNS: 1, CID: expect.any(String), BACK: 'hello from arch-1', FIELDS: ['arch-1']})
  })
})
