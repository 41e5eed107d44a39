// An adversarial run against a real `r1 node start` (loopback, temp data dir): a few thousand generated
// hostile frames, in batches by category. After each batch: the node still answers an allowed R1_STATE
// (else a crash), its pipelines are what they were (else a state change), and no stranger's connection
// received a planted name, instance id, error text or secret (else a leak). Then a restart, and the
// commands accepted before it are replayed. Prints one line:
//   adversarial: tried N / node crashes N / state changes N / leaks N
import {createHash} from 'node:crypto'
import {afterAll, describe, expect, it} from 'vitest'
import {generateIdentity, type Identity} from '../../src/protocol/identity.js'
import {type Case, generateCases, refusedBundles, type Role, type Target} from './cases.js'
import {AdvNode, Conn, envelope, roundTrip, sign} from './harness.js'

const CONNECTIONS: Record<Role, number> = {stranger: 3, probe: 1, allowed: 3}

interface Tally {
  tried: number
  crashes: string[]
  stateChanges: string[]
  leaks: string[]
  unanswered: number
  /** Cases that never left: the node refused the connection. */
  undelivered: number
}

/** Names and secrets planted on the node: a stranger must never see them. */
function newSecrets(): Target['secrets'] {
  const tag = createHash('sha256').update(String(process.hrtime.bigint())).digest('hex').slice(0, 8)
  return {pipeline: `vault-${tag}`, instance: `ledger-${tag}`, errorText: `boom-${tag}`, password: `pw-${tag}-hunter2`, replayPipeline: `replayed-${tag}`}
}

/** A planted pipeline whose instance fails with a secret in its error, plus one with two accepted versions (to replay). */
async function plant(node: AdvNode, allowed: Identity, secrets: Target['secrets'], strangers: Identity[]): Promise<Target> {
  const dbUrl = `postgres://admin:${secrets.password}@db.internal:5432/app`
  const conn = new Conn(node.url, node.address, 'planter')
  await conn.connect()
  const accepted: string[] = []
  const apply = async (config: Record<string, unknown>) => {
    const sent = await roundTrip(conn, allowed, 'UPDATE_CONFIG', config, node.address)
    expect(sent.answer?.EE_EVENT_TYPE, `planting ${String(config.NAME)}: ${JSON.stringify(sent.answer)}`).toBe('R1_REPLY')
    accepted.push(sent.text)
  }
  await apply({
    NAME: secrets.pipeline,
    TYPE: 'Void',
    PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: secrets.instance, PROCESS_DELAY: 1, CODE: `throw new Error("${secrets.errorText}: cannot reach ${dbUrl}")`}]}],
  })
  const replayed = (n: number) => ({NAME: secrets.replayPipeline, TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'r-1', PROCESS_DELAY: 3600, CODE: `return ${n}`}]}]})
  await apply(replayed(1))
  await apply(replayed(2))
  // Wait (bounded) until the instance's error, with the secret in it, is in the node's state.
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    const state = await queryState(node, allowed)
    const failing = state?.INSTANCES?.find((i: {INSTANCE_ID: string; LAST_ERROR: string | null}) => i.INSTANCE_ID === secrets.instance)
    if (failing?.LAST_ERROR?.includes(secrets.errorText)) break
    await new Promise((r) => setTimeout(r, 250))
  }
  conn.close()
  if (process.env.R1_ADVERSARIAL_VERBOSE) process.stderr.write(`adversarial: planted ${secrets.pipeline} in ${Date.now() - deadline + 20_000} ms\n`)
  return {address: node.address, allowed, strangers, secrets, accepted}
}

/** The node's R1_STATE for the allowed key, or undefined when it does not answer within 15 s. */
async function queryState(node: AdvNode, allowed: Identity): Promise<any> {
  if (!node.alive) return undefined
  const conn = new Conn(node.url, node.address, 'checker')
  try {
    await conn.connect()
    const {answer} = await roundTrip(conn, allowed, 'R1_STATE', null, node.address, 10_000)
    return answer?.EE_EVENT_TYPE === 'R1_REPLY' ? (answer.RESULT as any) : undefined
  } catch {
    return undefined
  } finally {
    conn.close()
  }
}

/** What must not change: the pipelines (live and archived) and which refused bundles the node holds. */
async function snapshot(node: AdvNode, allowed: Identity): Promise<string | undefined> {
  const state = await queryState(node, allowed)
  if (!state) return undefined
  const conn = new Conn(node.url, node.address, 'bundles')
  try {
    await conn.connect()
    const hashes = [...new Set(refusedBundles)]
    const held: string[] = []
    for (let i = 0; i < hashes.length; i += 1000) {
      const {answer} = await roundTrip(conn, allowed, 'R1_BUNDLE_HAS', {HASHES: hashes.slice(i, i + 1000)}, node.address)
      held.push(...(((answer as any)?.RESULT?.HAVE as string[] | undefined) ?? ['<no answer>']))
    }
    return JSON.stringify({PIPELINES: state.PIPELINES, ARCHIVED: state.ARCHIVED, BUNDLES_HELD: held})
  } finally {
    conn.close()
  }
}

function openConns(node: AdvNode): Record<Role, Conn[]> {
  const conns = {} as Record<Role, Conn[]>
  for (const role of Object.keys(CONNECTIONS) as Role[]) conns[role] = Array.from({length: CONNECTIONS[role]}, (_, i) => new Conn(node.url, node.address, `${role}-${i}`))
  return conns
}

/** For each frame a stranger's connection received with planted strings in it (those it sent itself excluded): which ones. */
function leaksIn(conn: Conn, from: number, target: Target): string[][] {
  const {pipeline, instance, errorText, password, replayPipeline} = target.secrets
  const named: Array<[string, string]> = [
    [pipeline, 'pipeline name'],
    [replayPipeline, 'pipeline name'],
    [instance, 'instance id'],
    [errorText, 'LAST_ERROR text'],
    [password, 'secret'],
  ]
  const tokens = named.filter(([token]) => !conn.sentTokens.has(token))
  const found: string[][] = []
  for (const text of conn.received.slice(from)) {
    // A batch frame carries several replies: each is one answer to look at.
    let items = [text]
    try {
      const frame = JSON.parse(text) as {EE_EVENT_TYPE?: string; EVENTS?: unknown[]}
      if (frame.EE_EVENT_TYPE === 'R1_BATCH' && Array.isArray(frame.EVENTS)) items = frame.EVENTS.map((e) => JSON.stringify(e))
    } catch {
      // not JSON: looked at as text
    }
    for (const item of items) {
      const hits = [...new Set(tokens.filter(([token]) => item.includes(token)).map(([, what]) => what))]
      if (hits.length > 0) found.push(hits)
    }
  }
  return found
}

describe('adversarial: a real node under hostile input', () => {
  const allowed = generateIdentity()
  let node: AdvNode | undefined
  const tally: Tally = {tried: 0, crashes: [], stateChanges: [], leaks: [], unanswered: 0, undelivered: 0}

  afterAll(async () => {
    await node?.dispose()
  })

  it('crashes nothing, changes nothing, leaks nothing', {timeout: 180_000}, async () => {
    const started = Date.now()
    node = await AdvNode.start([allowed.address])
    let target = await plant(node, allowed, newSecrets(), [generateIdentity(), generateIdentity(), generateIdentity()])
    const groups = generateCases(target)
    let conns = openConns(node)
    let baseline = await snapshot(node, allowed)
    expect(baseline, 'the node answers R1_STATE before the run').toBeDefined()

    const runBatch = async (category: string, cases: Case[]) => {
      const strangers = [...conns.stranger, ...conns.probe]
      const marks = strangers.map((c) => c.received.length)
      const queues = new Map<Conn, Case[]>()
      const counters: Record<Role, number> = {stranger: 0, probe: 0, allowed: 0}
      for (const c of cases) {
        const list = conns[c.role]
        const conn = list[counters[c.role]++ % list.length]!
        queues.set(conn, [...(queues.get(conn) ?? []), c])
      }
      // Commands that would change the node: count the ones it accepts (R1_REPLY), each hash once per connection.
      const watched = new Map<string, {conn: Conn; hash: string; before: number}>()
      for (const [conn, list] of queues) {
        for (const c of list) if (c.mutating && c.hash) watched.set(`${conn.name} ${c.hash}`, {conn, hash: c.hash, before: conn.replies.get(c.hash) ?? 0})
      }
      const secretTokens = Object.values(target.secrets)
      await Promise.all(
        [...queues].map(async ([conn, list]) => {
          for (const c of list) if (!(await conn.send(c.frame, {hash: c.hash, binary: c.binary, tokens: secretTokens}))) tally.undelivered++
          // The node handles a connection's frames in order: its answer to a last signed query follows every verdict before it.
          const sentinel = sign(envelope('R1_STATE', null, target.address), conn.name.startsWith('allowed') ? allowed : target.strangers[0]!)
          await conn.send(sentinel.text, {hash: sentinel.hash})
          tally.unanswered += await conn.settle(15_000)
        }),
      )
      let accepted = 0
      for (const {conn, hash, before} of watched.values()) accepted += (conn.replies.get(hash) ?? 0) - before
      tally.tried += cases.length
      if (process.env.R1_ADVERSARIAL_VERBOSE) process.stderr.write(`adversarial: ${category}: ${cases.length} cases sent, ${Date.now() - started} ms\n`)
      const after = await snapshot(node!, allowed)
      if (process.env.R1_ADVERSARIAL_VERBOSE) process.stderr.write(`adversarial: ${category}: checked, ${after === undefined ? 'no answer' : after === baseline ? 'unchanged' : 'CHANGED'}, ${Date.now() - started} ms\n`)
      if (after === undefined) {
        tally.crashes.push(category)
        // A node that no longer answers is replaced (same key, same planted names, fresh data dir) for the remaining batches.
        const dead = node!
        node = await AdvNode.start([allowed.address], dead)
        await dead.dispose()
        target = await plant(node, allowed, target.secrets, target.strangers)
        conns = openConns(node)
        baseline = await snapshot(node, allowed)
        return
      }
      // A change no accepted command explains still counts once.
      if (after !== baseline && process.env.R1_ADVERSARIAL_VERBOSE) process.stderr.write(`adversarial: ${category}: before ${baseline}\nafter ${after}\n`)
      const changes = accepted > 0 ? accepted : after !== baseline ? 1 : 0
      for (let i = 0; i < changes; i++) tally.stateChanges.push(category)
      baseline = after
      strangers.forEach((conn, i) => {
        for (const tokens of leaksIn(conn, marks[i]!, target)) tally.leaks.push(`${category}: ${tokens.join(', ')}`)
      })
    }

    for (const [category, cases] of Object.entries(groups)) await runBatch(category, cases)

    // A signed command is accepted once, across restarts too.
    if (node.alive) {
      await node.restart()
      for (const list of Object.values(conns)) for (const conn of list) conn.close()
      conns = openConns(node)
      baseline = await snapshot(node, allowed)
      const replays = target.accepted.map((frame): Case => ({category: 'replay after restart', role: 'allowed', frame, hash: JSON.parse(frame).EE_HASH, mutating: true}))
      await runBatch('replay after restart', replays)
    }

    const crashes = tally.crashes.length
    const changes = tally.stateChanges.length
    const leaks = tally.leaks.length
    process.stdout.write(`adversarial: tried ${tally.tried} / node crashes ${crashes} / state changes ${changes} / leaks ${leaks}\n`)
    const count = (list: string[]) => Object.fromEntries([...new Set(list)].map((k) => [k, list.filter((x) => x === k).length]))
    const detail = {crashes: count(tally.crashes), stateChanges: count(tally.stateChanges), leaks: count(tally.leaks), unanswered: tally.unanswered, undelivered: tally.undelivered}
    if (crashes + changes + leaks > 0) process.stdout.write(`adversarial: ${JSON.stringify(detail)}\n`)
    // A node that refuses the adversary's connections would make the run say nothing.
    expect(tally.tried - tally.undelivered).toBeGreaterThan(2500)
    expect({crashes: detail.crashes, stateChanges: detail.stateChanges, leaks: detail.leaks}).toEqual({crashes: {}, stateChanges: {}, leaks: {}})
  })
})
