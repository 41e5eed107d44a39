// The wire contract carried by the types: a payload that does not fit its action does not compile
// (`npm run typecheck` checks this file, and fails on an `@ts-expect-error` that no longer errs), and
// the result schemas accept what the node builds.
import {describe, expect, expectTypeOf, it} from 'vitest'
import type {NodeLink} from '../../src/fleet/engine.js'
import {
  type Action,
  type BundleHasResult,
  type CommandOf,
  type HeartbeatResult,
  parseResult,
  PayloadSchemas,
  type PayloadOf,
  ResultSchemas,
  type ResultOf,
  type StateResult,
  StateResultSchema,
  type SubscribeResult,
} from '../../src/protocol/messages.js'
import type {CommandMeta, NodeCore} from '../../src/runtime/contract.js'
import {type NodeQueries, stateResult} from '../../src/runtime/node-info.js'
import type {Session} from '../../src/session/index.js'

const meta: CommandMeta = {hash: 'h', sender: 's'}

/** Never called: the compiler checking its body is the test. */
export async function wrongPayloadsDoNotCompile(session: Session, link: NodeLink, core: NodeCore): Promise<void> {
  // @ts-expect-error: DELETE_CONFIG carries the pipeline NAME as a string (what `r1 run --watch` sent wrong)
  await session.send('DELETE_CONFIG', {NAME: 'p'})
  // @ts-expect-error: a NAME is a string
  await session.send('DELETE_CONFIG', {NAME: 1})
  // @ts-expect-error: ARCHIVE_CONFIG too takes the NAME string
  await session.send('ARCHIVE_CONFIG', 1)
  // @ts-expect-error: R1_ROLLBACK's VERSION is a number
  await session.send('R1_ROLLBACK', {NAME: 'p', VERSION: '2'})
  // @ts-expect-error: UPDATE_CONFIG needs TYPE and PLUGINS
  await session.post('UPDATE_CONFIG', {NAME: 'p'})
  // @ts-expect-error: not an action
  await session.send('DELETE_PIPELINE', 'p')
  // @ts-expect-error: the fleet link checks the same
  await link.send('DELETE_CONFIG', {NAME: 'p'})
  // @ts-expect-error: and so does the node core
  await core.execute('ARCHIVE_CONFIG', {NAME: 'p'}, meta)
  // @ts-expect-error: an action and another action's payload do not make a command
  const mixed: CommandOf = {action: 'DELETE_CONFIG', payload: {NAME: 'p', VERSION: 1}}

  // the right ones compile, and answer with their action's RESULT type
  await session.send('DELETE_CONFIG', 'p')
  await link.send('ARCHIVE_CONFIG', 'p')
  await core.execute('R1_ROLLBACK', {NAME: 'p', VERSION: 2}, meta)
  expectTypeOf(await session.request('R1_STATE', {NAME: 'p'})).toEqualTypeOf<StateResult>()
  expectTypeOf((await session.send('R1_SUBSCRIBE', {TYPES: ['LOG']})).result).toEqualTypeOf<SubscribeResult>()
  expectTypeOf((await session.send('DELETE_CONFIG', 'p')).result).toEqualTypeOf<null>()
  expectTypeOf(await link.state()).toEqualTypeOf<StateResult>()
  void mixed
}

describe('the action → payload / result map', () => {
  it('types each action by its schemas', () => {
    expectTypeOf<PayloadOf<'DELETE_CONFIG'>>().toEqualTypeOf<string>()
    expectTypeOf<ResultOf<'R1_STATE'>>().toEqualTypeOf<StateResult>()
    expectTypeOf<ResultOf<'FULL_HEARTBEAT'>>().toEqualTypeOf<HeartbeatResult>()
    expectTypeOf<ResultOf<'R1_BUNDLE_HAS'>>().toEqualTypeOf<BundleHasResult>()
    expectTypeOf<ResultOf<'UPDATE_CONFIG'>>().toEqualTypeOf<null>()
    expect(Object.keys(ResultSchemas).every((action) => action in PayloadSchemas)).toBe(true)
  })

  it('DELETE_CONFIG and ARCHIVE_CONFIG take the NAME string, as Ratio1 sends it', () => {
    for (const action of ['DELETE_CONFIG', 'ARCHIVE_CONFIG'] satisfies Action[]) {
      expect(PayloadSchemas[action].safeParse('p').success).toBe(true)
      expect(PayloadSchemas[action].safeParse({NAME: 'p'}).success).toBe(false)
    }
  })

  it('the R1_STATE the server builds is what the session accepts, key for key', () => {
    const config = {NAME: 'p', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'S', INSTANCES: [{INSTANCE_ID: 'i', X: 1}]}], R1_BUNDLES: {S: 'a'.repeat(64)}}
    const core = {
      address: '0xai_node',
      alias: 'edge',
      lastSeq: () => 7,
      state: () => [
        {name: 'p', version: 2, archived: false, config, instances: [{signature: 'S', instanceId: 'i', status: 'running' as const, lastError: null, pid: 42, counters: {iterations: 3}}]},
        {name: 'old', version: 1, archived: true, config: {...config, NAME: 'old'}, instances: []},
      ],
      versions: (name: string) => [{version: 1, appliedAt: '2026-01-01T00:00:00.000Z'}, ...(name === 'p' ? [{version: 2, appliedAt: '2026-01-02T00:00:00.000Z'}] : [])],
      warnings: () => ['journal.json was corrupt; set aside'],
    } as unknown as NodeCore & NodeQueries
    const built = stateResult(core, {version: '0.1.0', uptimeSeconds: 5})
    expect(StateResultSchema.parse(built)).toEqual(built)
    expect(built).toMatchObject({PIPELINES: [{NAME: 'p', R1_VERSION: 2, R1_BUNDLES: config.R1_BUNDLES}], ARCHIVED: [{NAME: 'old', R1_VERSION: 1}], INSTANCES: [{PIPELINE: 'p', PID: 42}]})
  })

  it('parseResult: a malformed answer names the field; a command that changes state answers null', () => {
    const state = {ADDRESS: 'a', ALIAS: 'b', VERSION: null, UPTIME: 1, LAST_SEQ: 0, PIPELINES: [{NAME: 'p'}], ARCHIVED: [], INSTANCES: [], VERSIONS: {}, WARNINGS: []}
    expect(parseResult('R1_STATE', state)).toEqual({ok: false, detail: expect.stringMatching(/^RESULT\.PIPELINES\.0\.TYPE: /)})
    expect(parseResult('R1_BUNDLE_HAS', {HAVE: [], MISSING: ['x']})).toEqual({ok: true, result: {HAVE: [], MISSING: ['x']}})
    expect(parseResult('DELETE_CONFIG', null)).toEqual({ok: true, result: null})
  })
})
