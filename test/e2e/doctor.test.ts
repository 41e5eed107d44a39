// `r1 doctor` end to end: the built CLI against real node processes (ws://, wss:// with a certificate about to
// expire and one expired, one that does not allow us, one down, one under another key) and in-process nodes
// whose command clock is moved (the node server's `now`), plus a key file others can read.
import {appendFileSync, chmodSync, cpSync, mkdirSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {generateIdentity} from '../../src/protocol/identity.js'
import {type NodeProcess, cliIdentity, r1, selfSignedCert, startNode, tempRoot} from '../deploy/nodes.js'
import {startTestNode, type TestNode} from '../server/helpers.js'

const root = tempRoot('r1-e2e-doctor-')
const project = join(root.dir, 'project')
let env: Record<string, string>
let address: string
let nodes: NodeProcess[] = []
let skewed: TestNode[] = []

/** A self-signed certificate for 127.0.0.1 whose validity ended in 2020 (`openssl ca` takes explicit dates). */
async function expiredCert(dir: string): Promise<{cert: string; key: string}> {
  const run = (args: string[]) => execa('openssl', args, {cwd: dir, stdin: 'ignore'})
  writeFileSync(join(dir, 'ca.cnf'), '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\ncopy_extensions = copy\nunique_subject = no\n[p]\ncommonName = supplied\n')
  writeFileSync(join(dir, 'index.txt'), '')
  writeFileSync(join(dir, 'serial'), '01\n')
  await run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'req.csr', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'])
  await run(['ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', 'key.pem', '-in', 'req.csr', '-out', 'cert.pem', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-notext'])
  return {cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem')}
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}

function doctor(args: string[], dir = project) {
  return r1(['doctor', '--dir', dir, '--connect-timeout', '5', ...args], {env})
}

type Check = {id: string; status: string; target?: string; message: string; hint?: string; details?: Record<string, any>}
const checksOf = (json: any, target?: string): Record<string, Check> => Object.fromEntries((json.checks as Check[]).filter((c) => c.target === target).map((c) => [c.id, c]))

beforeAll(async () => {
  const identity = await cliIdentity(root.dir)
  env = identity.env
  address = identity.address
  const stranger = (await cliIdentity(root.dir, 'stranger')).address
  cpSync(fileURLToPath(new URL('../fixtures/projects/basic', import.meta.url)), project, {recursive: true})
  const expiredDir = join(root.dir, 'expired-cert')
  mkdirSync(expiredDir)
  // selfSignedCert's certificate is valid for one day: it expires within the 14 days doctor warns about
  const [near, expired] = await Promise.all([selfSignedCert(root.dir), expiredCert(expiredDir)])
  nodes = await Promise.all([
    startNode({dataDir: join(root.dir, 'node-ok'), allow: [address], env}),
    startNode({dataDir: join(root.dir, 'node-near'), allow: [address], tls: near, env}),
    startNode({dataDir: join(root.dir, 'node-expired'), allow: [address], tls: expired, env}),
    startNode({dataDir: join(root.dir, 'node-stranger'), allow: [stranger], env}),
  ])
  const [ok, nearNode, expiredNode, strangerNode] = nodes
  const down = await closedPort()
  appendFileSync(
    join(project, 'config.yaml'),
    [
      'targets:',
      `  ok: { url: "${ok.url}", address: "${ok.address}", tags: { role: good } }`,
      `  near: { url: "${nearNode.url}", address: "${nearNode.address}", ca: "${near.cert}", tags: { role: tls } }`,
      `  expired: { url: "${expiredNode.url}", address: "${expiredNode.address}", ca: "${expired.cert}" }`,
      `  stranger: { url: "${strangerNode.url}", address: "${strangerNode.address}" }`,
      `  down: { url: "ws://127.0.0.1:${down}", address: "${generateIdentity().address}" }`,
      `  wrong: { url: "${ok.url}", address: "${generateIdentity().address}" }`,
      'environments:',
      '  staging: { targets: [ok, stranger] }',
      '',
    ].join('\n'),
  )
}, 120_000)

afterAll(async () => {
  await Promise.all([...nodes.map((n) => n.stop()), ...skewed.map((n) => n.dispose())])
  root.dispose()
})

describe.sequential('r1 doctor against real nodes', () => {
  it('a healthy node: every check ok (no TLS on ws://), exit 0, a stable JSON document', async () => {
    const run = await doctor(['--target', 'ok', '--json'])
    expect(run.exitCode, run.stderr + run.stdout).toBe(0)
    expect(run.json.ok).toBe(true)
    expect(run.json.exitCode).toBe(0)
    expect(run.json.checks.map((c: Check) => [c.id, c.target ?? null, c.status])).toEqual([
      ['node-version', null, 'ok'],
      ['key-file', null, 'ok'],
      ['project', null, 'ok'],
      ['reachable', 'ok', 'ok'],
      ['tls', 'ok', 'skip'],
      ['address', 'ok', 'ok'],
      ['clock', 'ok', 'ok'],
      ['allow-list', 'ok', 'ok'],
    ])
    const local = checksOf(run.json)
    expect(local['key-file'].details).toMatchObject({mode: '0600', address})
    const node = checksOf(run.json, 'ok')
    expect(Math.abs(node.clock.details!.offsetMs)).toBeLessThan(60_000)
    expect(node['allow-list'].message).toContain(address)
    expect(run.json.summary).toEqual({ok: 7, warn: 0, fail: 0, skip: 1})
  })

  it('every target: each problem is its check, with a fix; the worst status decides the exit code', async () => {
    const run = await doctor(['--json'])
    expect(run.exitCode, run.stderr).toBe(1)
    expect(run.json.ok).toBe(false)

    const near = checksOf(run.json, 'near')
    expect(near.tls.status).toBe('warn')
    expect(near.tls.message).toMatch(/expires in 0 days/)
    expect(near.tls.hint).toContain('--tls-cert')
    expect([near.reachable.status, near.address.status, near['allow-list'].status]).toEqual(['ok', 'ok', 'ok'])

    const expired = checksOf(run.json, 'expired')
    expect(expired.tls.status).toBe('fail')
    expect(expired.tls.message).toContain('expired on 2020-01-02')
    expect(expired.reachable.status).toBe('fail')
    // the node still proves its key over a connection that does not check the certificate
    expect([expired.address.status, expired.clock.status, expired['allow-list'].status]).toEqual(['ok', 'ok', 'ok'])

    const stranger = checksOf(run.json, 'stranger')
    expect(stranger.reachable.status).toBe('ok')
    expect(stranger['allow-list']).toMatchObject({status: 'fail', details: {reason: 'NOT_ALLOWED'}})
    expect(stranger['allow-list'].hint).toBe(`On the node: r1 node allow ${address}`)

    const down = checksOf(run.json, 'down')
    expect(down.reachable.status).toBe('fail')
    expect(down.reachable.details).toMatchObject({code: 'NODE_UNREACHABLE'})
    expect([down.tls.status, down.address.status, down.clock.status, down['allow-list'].status]).toEqual(['skip', 'skip', 'skip', 'skip'])

    const wrong = checksOf(run.json, 'wrong')
    expect(wrong.reachable.status).toBe('ok')
    expect(wrong.address.status).toBe('fail')
    expect(wrong.address.message).toContain(`signs as ${nodes[0].address}`)
    expect(wrong.address.hint).toContain('targets.wrong')
    expect(wrong['allow-list'].status).toBe('skip')
  })

  it('human output: a table, the fixes, the tally; exit 1', async () => {
    const run = await doctor(['--target', 'stranger'])
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toMatch(/^CHECK\s+TARGET\s+STATUS\s+MESSAGE/)
    expect(run.stdout).toMatch(/allow-list\s+stranger\s+fail/)
    expect(run.stdout).toContain(`To fix:\n  allow-list (stranger): On the node: r1 node allow ${address}`)
    expect(run.stdout).toMatch(/6 ok, 0 warnings, 1 failed, 1 skipped$/)
  })

  it('--tag and --env choose targets as for deploy; warnings fail only with --strict', async () => {
    const tagged = await doctor(['--tag', 'role=tls', '--json'])
    expect(tagged.exitCode, tagged.stdout).toBe(0)
    expect([...new Set(tagged.json.checks.map((c: Check) => c.target).filter(Boolean))]).toEqual(['near'])
    expect(tagged.json.summary.warn).toBe(1)
    const strict = await doctor(['--tag', 'role=tls', '--strict', '--json'])
    expect(strict.exitCode).toBe(1)
    expect(strict.json.ok).toBe(false)

    const staging = await doctor(['--env', 'staging', '--json'])
    expect([...new Set(staging.json.checks.map((c: Check) => c.target).filter(Boolean))]).toEqual(['ok', 'stranger'])
    const unknown = await doctor(['--env', 'stagin', '--json'])
    expect(unknown.exitCode).toBe(2)
    expect(unknown.json.error.code).toBe('UNKNOWN_ENVIRONMENT')
  })

  it('a key file others can read fails key-file with the chmod to run', async () => {
    const key = join(env.R1_CONFIG_DIR, 'key.pem')
    chmodSync(key, 0o644)
    try {
      const run = await doctor(['--target', 'ok', '--json'])
      expect(run.exitCode).toBe(1)
      const check = checksOf(run.json)['key-file']
      expect(check).toMatchObject({status: 'fail', hint: `chmod 600 ${key}`, details: {mode: '0644'}})
      // the key still signs: the node checks go on
      expect(checksOf(run.json, 'ok')['allow-list'].status).toBe('ok')
    } finally {
      chmodSync(key, 0o600)
    }
  })

  it('no key at all: key-file fails, the allow-list is not checked', async () => {
    const run = await r1(['doctor', '--dir', project, '--target', 'ok', '--json'], {env: {R1_CONFIG_DIR: join(root.dir, 'no-key')}})
    expect(run.exitCode).toBe(1)
    expect(checksOf(run.json)['key-file']).toMatchObject({status: 'fail', hint: expect.stringContaining('r1 keys generate')})
    expect(checksOf(run.json, 'ok')['allow-list'].status).toBe('skip')
  })

  it('an invalid config.yaml fails the project check; ad hoc --node targets are still checked', async () => {
    const broken = join(root.dir, 'broken')
    cpSync(project, broken, {recursive: true})
    appendFileSync(join(broken, 'config.yaml'), 'colour: blue\n')
    const run = await doctor(['--node', nodes[0].url, '--address', nodes[0].address, '--json'], broken)
    expect(run.exitCode).toBe(1)
    const check = checksOf(run.json).project
    expect(check.status).toBe('fail')
    expect(check.message).toContain('[schema-unknown-key]')
    expect(check.hint).toContain('r1 validate')
    const host = new URL(nodes[0].url).host
    expect(checksOf(run.json, host).reachable.status).toBe('ok')
  })

  it("clock skew from the node's hello: warned above 60 s, failed (and commands refused) beyond 5 min", async () => {
    const ahead = (ms: number) => startTestNode({allow: [address], server: {now: () => Date.now() + ms}})
    skewed = await Promise.all([ahead(2 * 60_000), ahead(-10 * 60_000)])
    const [warn, fail] = await Promise.all(skewed.map((n) => doctor(['--node', n.node.url, '--address', n.node.address, '--json'], root.dir)))

    const warned = checksOf(warn.json, new URL(skewed[0].node.url).host)
    expect(warned.clock.status).toBe('warn')
    expect(warned.clock.details!.offsetMs).toBeGreaterThan(100_000)
    expect(warned.clock.message).toContain('ahead of')
    expect(warned['allow-list'].status).toBe('ok')
    expect(warn.exitCode).toBe(0)

    const failed = checksOf(fail.json, new URL(skewed[1].node.url).host)
    expect(failed.clock.status).toBe('fail')
    expect(failed.clock.message).toMatch(/behind this machine's: beyond ±300\.0 s it refuses every command/)
    expect(failed.clock.hint).toContain('NTP')
    expect(failed['allow-list']).toMatchObject({status: 'fail', details: {reason: 'TIME_SKEW'}})
    expect(fail.exitCode).toBe(1)
  })
})
