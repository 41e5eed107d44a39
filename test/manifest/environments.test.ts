import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {compileManifest, environmentTargets, hasTags, validateProject, withEnvironment} from '../../src/manifest/index.js'

const fixture = join(import.meta.dirname, '../fixtures/manifests/valid/environments')

describe('environments', () => {
  it('hasTags needs every tag, with the same value', () => {
    expect(hasTags({site: 'north', tier: 'canary'}, {site: 'north'})).toBe(true)
    expect(hasTags({site: 'north'}, {site: 'north', tier: 'canary'})).toBe(false)
    expect(hasTags({site: 'north'}, {site: 'south'})).toBe(false)
    expect(hasTags(undefined, {site: 'north'})).toBe(false)
    expect(hasTags(undefined, {})).toBe(true)
  })

  it("an environment's targets are the ones it names plus the ones its tags match, in config order", async () => {
    const {manifest} = await validateProject(fixture)
    expect(environmentTargets(manifest!.environments.production!, manifest!.targets)).toEqual(['edge-a', 'edge-b', 'edge-c'])
    expect(environmentTargets(manifest!.environments.staging!, manifest!.targets)).toEqual(['edge-a'])
  })

  it('withEnvironment replaces the overridden keys whatever their spelling and lists each value it sets', async () => {
    const {manifest} = await validateProject(fixture)
    const {manifest: production, overrides} = withEnvironment(manifest!, 'production')
    expect(overrides).toEqual([
      {pipeline: 'temps', instance: 'monitor-1', key: 'THRESHOLD', from: 25, to: 40},
      {pipeline: 'temps', instance: 'monitor-1', key: 'UNIT', from: 'C', to: 'F'},
    ])
    const instance = compileManifest(production)[0]!.PLUGINS[0]!.INSTANCES[0]!
    expect(instance).toMatchObject({INSTANCE_ID: 'monitor-1', THRESHOLD: 40, UNIT: 'F'})
    // the project's own manifest is left as it was
    expect(compileManifest(manifest!)[0]!.PLUGINS[0]!.INSTANCES[0]).toMatchObject({THRESHOLD: 25, UNIT: 'C'})
    expect(withEnvironment(manifest!, 'staging').overrides).toEqual([])
  })
})
