import {Chalk} from 'chalk'
import {describe, expect, it} from 'vitest'
import {diffKeys, planPipeline, planTarget} from '../../src/deploy/plan.js'
import {renderPlan} from '../../src/deploy/render.js'
import type {PipelineConfig} from '../../src/protocol/pipeline.js'

const H1 = 'a'.repeat(64)
const H2 = 'b'.repeat(64)

function pipeline(over: Partial<PipelineConfig> = {}, m1: Record<string, unknown> = {}): PipelineConfig {
  return {
    NAME: 'temps',
    TYPE: 'Void',
    PLUGINS: [
      {SIGNATURE: 'TEMP_MONITOR', INSTANCES: [{INSTANCE_ID: 'monitor-1', THRESHOLD: 25, PROCESS_DELAY: 1, ...m1}, {INSTANCE_ID: 'monitor-2', THRESHOLD: 30}]},
      {SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'exec', CODE: 'return 1'}]},
    ],
    R1_BUNDLES: {TEMP_MONITOR: H1},
    ...over,
  }
}
const plain = new Chalk({level: 0})

describe('planPipeline', () => {
  it('creates a pipeline the node lacks, confirming the pipeline and every instance', () => {
    const plan = planPipeline(pipeline(), undefined)
    expect(plan.change).toBe('create')
    expect(plan.command).toEqual({action: 'UPDATE_CONFIG', payload: pipeline()})
    expect(plan.confirm.pipeline).toBe(true)
    expect(plan.confirm.instances).toEqual([
      {signature: 'TEMP_MONITOR', instanceId: 'monitor-1'},
      {signature: 'TEMP_MONITOR', instanceId: 'monitor-2'},
      {signature: 'CUSTOM_EXEC_01', instanceId: 'exec'},
    ])
    expect(plan.previous).toBeUndefined()
  })

  it('leaves an identical pipeline alone, whatever the key order and node-managed keys', () => {
    const current = {...pipeline(), R1_VERSION: 3}
    current.PLUGINS[0].INSTANCES[0] = {PROCESS_DELAY: 1, THRESHOLD: 25, INSTANCE_ID: 'monitor-1'}
    const plan = planPipeline(pipeline(), current)
    expect(plan.change).toBe('unchanged')
    expect(plan.command).toBeUndefined()
    expect(plan.confirm).toEqual({pipeline: false, instances: []})
  })

  it('sends only the changed instance as a batch delta when only instance configs change', () => {
    const current = pipeline()
    const plan = planPipeline(pipeline({}, {THRESHOLD: 40, UNIT: 'F'}), current)
    expect(plan.change).toBe('update-instances')
    expect(plan.command).toEqual({
      action: 'BATCH_UPDATE_PIPELINE_INSTANCE',
      payload: [{NAME: 'temps', SIGNATURE: 'TEMP_MONITOR', INSTANCE_ID: 'monitor-1', INSTANCE_CONFIG: {THRESHOLD: 40, PROCESS_DELAY: 1, UNIT: 'F'}}],
    })
    expect(plan.confirm).toEqual({pipeline: false, instances: [{signature: 'TEMP_MONITOR', instanceId: 'monitor-1'}]})
    expect(plan.instances.find((i) => i.instanceId === 'monitor-1')!.diff).toEqual([
      {key: 'THRESHOLD', kind: 'change', from: 25, to: 40},
      {key: 'UNIT', kind: 'add', to: 'F'},
    ])
    expect(plan.instances.filter((i) => i.change === 'unchanged')).toHaveLength(2)
    expect(plan.previous).toEqual(current)
  })

  it('sends the whole pipeline when a key is removed, an instance is added or removed, or TYPE changes', () => {
    const noDelay = pipeline()
    delete (noDelay.PLUGINS[0].INSTANCES[0] as Record<string, unknown>).PROCESS_DELAY
    expect(planPipeline(noDelay, pipeline()).command?.action).toBe('UPDATE_CONFIG')

    const added = pipeline()
    added.PLUGINS[1].INSTANCES.push({INSTANCE_ID: 'exec-2', CODE: 'return 2'})
    const addPlan = planPipeline(added, pipeline())
    expect(addPlan.change).toBe('update')
    expect(addPlan.confirm).toEqual({pipeline: true, instances: [{signature: 'CUSTOM_EXEC_01', instanceId: 'exec-2'}]})

    const removed = pipeline()
    removed.PLUGINS[0].INSTANCES.pop()
    const removePlan = planPipeline(removed, pipeline())
    expect(removePlan.instances.find((i) => i.instanceId === 'monitor-2')!.change).toBe('remove')
    expect(removePlan.confirm).toEqual({pipeline: true, instances: []})

    const typed = planPipeline(pipeline({TYPE: 'VideoStream'}), pipeline())
    expect(typed.change).toBe('update')
    expect(typed.diff).toEqual([{key: 'TYPE', kind: 'change', from: 'Void', to: 'VideoStream'}])
  })

  it('restarts the instances of a signature whose bundle changed, not the others', () => {
    const plan = planPipeline(pipeline({R1_BUNDLES: {TEMP_MONITOR: H2}}), pipeline())
    expect(plan.change).toBe('update')
    expect(plan.bundles).toEqual([{key: 'TEMP_MONITOR', kind: 'change', from: H1, to: H2}])
    expect(plan.confirm.instances.map((i) => i.instanceId)).toEqual(['monitor-1', 'monitor-2'])
    expect(plan.instances.find((i) => i.instanceId === 'exec')!.change).toBe('unchanged')
  })
})

describe('planPipeline: bundles the node lacks', () => {
  it('restarts the instances whose bundle the node lacks (a corrupt one it removed) although the config is unchanged', () => {
    const plan = planPipeline(pipeline(), pipeline(), new Set([H1]))
    expect(plan.change).toBe('update')
    expect(plan.command).toEqual({action: 'UPDATE_CONFIG', payload: pipeline()})
    expect(plan.bundles).toEqual([])
    expect(plan.missing).toEqual([{key: 'TEMP_MONITOR', kind: 'add', to: H1}])
    expect(plan.instances.map((i) => [i.instanceId, i.change, i.bundleMissing])).toEqual([
      ['monitor-1', 'restart', true],
      ['monitor-2', 'restart', true],
      ['exec', 'unchanged', undefined],
    ])
    expect(plan.confirm).toEqual({pipeline: true, instances: [{signature: 'TEMP_MONITOR', instanceId: 'monitor-1'}, {signature: 'TEMP_MONITOR', instanceId: 'monitor-2'}]})
  })

  it('a bundle of another pipeline, or one whose hash changes anyway, is not a restart for a lost bundle', () => {
    expect(planPipeline(pipeline(), pipeline(), new Set([H2])).change).toBe('unchanged')
    const changed = planPipeline(pipeline({R1_BUNDLES: {TEMP_MONITOR: H2}}), pipeline(), new Set([H2]))
    expect(changed.missing).toEqual([])
    expect(changed.instances.find((i) => i.instanceId === 'monitor-1')).toMatchObject({change: 'restart'})
    expect(changed.instances.find((i) => i.instanceId === 'monitor-1')!.bundleMissing).toBeUndefined()
  })

  it('sends the whole config (not instance deltas) when a bundle is missing and an instance changed too', () => {
    const plan = planPipeline(pipeline({}, {THRESHOLD: 40}), pipeline(), new Set([H1]))
    expect(plan.change).toBe('update')
    expect(plan.command?.action).toBe('UPDATE_CONFIG')
    expect(plan.instances.find((i) => i.instanceId === 'monitor-1')!.change).toBe('update')
    expect(plan.instances.find((i) => i.instanceId === 'monitor-2')!.change).toBe('restart')
    expect(plan.confirm.instances.map((i) => i.instanceId)).toEqual(['monitor-1', 'monitor-2'])
  })

  it('a missing files bundle (R1_FILES) restarts the instances of its signature', () => {
    const withFiles = pipeline({R1_FILES: {CUSTOM_EXEC_01: H2}})
    const plan = planPipeline(withFiles, withFiles, new Set([H2]))
    expect(plan.missing).toEqual([{key: 'CUSTOM_EXEC_01:files', kind: 'add', to: H2}])
    expect(plan.instances.filter((i) => i.change === 'restart').map((i) => i.instanceId)).toEqual(['exec'])
    expect(plan.confirm.instances).toEqual([{signature: 'CUSTOM_EXEC_01', instanceId: 'exec'}])
  })

  it('a disabled instance gets its bundle back but is not waited for (it starts nothing)', () => {
    const disabled = pipeline({}, {DISABLED: true})
    const plan = planPipeline(disabled, disabled, new Set([H1]))
    expect(plan.change).toBe('update')
    expect(plan.instances.find((i) => i.instanceId === 'monitor-1')!.change).toBe('unchanged')
    expect(plan.confirm.instances.map((i) => i.instanceId)).toEqual(['monitor-2'])
  })
})

describe('planPipeline: disabled instances', () => {
  it('a new pipeline, or an instance being disabled, waits for no start of a disabled instance (it would never confirm)', () => {
    const disabled = pipeline({}, {DISABLED: true})
    const created = planPipeline(disabled, undefined)
    expect(created.confirm.instances.map((i) => i.instanceId)).toEqual(['monitor-2', 'exec'])
    const turnedOff = planPipeline(disabled, pipeline())
    expect(turnedOff.instances.find((i) => i.instanceId === 'monitor-1')!.change).toBe('update')
    expect(turnedOff.confirm.instances).toEqual([])
    const turnedOn = planPipeline(pipeline(), disabled)
    expect(turnedOn.confirm.instances.map((i) => i.instanceId)).toEqual(['monitor-1'])
  })
})

describe('planTarget', () => {
  it('a pipeline whose bundle the node lacks is a change; its hash is among the bundles to upload', () => {
    const plan = planTarget([pipeline()], [pipeline()], [H1])
    expect(plan.changed).toBe(true)
    expect(plan.bundles).toEqual([H1])
    expect(plan.pipelines[0].change).toBe('update')
    const text = renderPlan(plan, plain).join('\n')
    expect(text).toContain('~ pipeline temps: update (2 to restart (bundle missing on the node), 1 unchanged) via UPDATE_CONFIG')
    expect(text).toContain('↻ bundle TEMP_MONITOR: aaaaaaaaaaaa missing on the node (uploaded again)')
    expect(text).toContain('↻ TEMP_MONITOR/monitor-1 (bundle missing on the node)')
    expect(planTarget([pipeline()], [pipeline()], [H2]).changed).toBe(false)
  })


  it('plans only the desired pipelines and lists the bundles they need', () => {
    const other = {NAME: 'other', TYPE: 'Void', PLUGINS: []}
    const second = pipeline({NAME: 'second', R1_BUNDLES: {TEMP_MONITOR: H2}})
    const plan = planTarget([pipeline(), second], [pipeline(), other])
    expect(plan.pipelines.map((p) => [p.name, p.change])).toEqual([
      ['temps', 'unchanged'],
      ['second', 'create'],
    ])
    expect(plan.bundles).toEqual([H1, H2])
    expect(plan.changed).toBe(true)
    expect(planTarget([pipeline()], [pipeline()]).changed).toBe(false)
  })
})

describe('diffKeys', () => {
  it('compares nested values structurally', () => {
    expect(diffKeys({ENV: {A: 1, B: 2}}, {ENV: {B: 2, A: 1}})).toEqual([])
    expect(diffKeys({ENV: {A: 1}}, {ENV: {A: 2}})).toEqual([{key: 'ENV', kind: 'change', from: {A: 1}, to: {A: 2}}])
  })
})

describe('renderPlan', () => {
  it('shows what changes, with the config diff, and dims what does not', () => {
    const plan = planTarget([pipeline({}, {THRESHOLD: 40}), pipeline({NAME: 'fresh'})], [pipeline()])
    const text = renderPlan(plan, plain).join('\n')
    expect(text).toContain('~ pipeline temps: update-instances (1 to change, 2 unchanged) via BATCH_UPDATE_PIPELINE_INSTANCE')
    expect(text).toContain('~ TEMP_MONITOR/monitor-1')
    expect(text).toContain('~ THRESHOLD: 25 → 40')
    expect(text.split('pipeline fresh')[0]).not.toContain('monitor-2')
    expect(text).toContain('+ pipeline fresh: create (3 to create) via UPDATE_CONFIG')
    expect(text).toContain('+ bundle TEMP_MONITOR: aaaaaaaaaaaa')
  })
})
