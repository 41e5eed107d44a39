import {describe, expect, it} from 'vitest'
import {applyDefaults, checkInstanceConfig, openPluginSpec, pluginSpec} from '../../src/manifest/fields.js'

describe('secret references in instance config', () => {
  const app = pluginSpec('PROCESS_APP_RUNNER')!

  it('are accepted where a string is (a typed key, a process app ENV value, an unchecked key), names checked at any depth', () => {
    expect(checkInstanceConfig(app, {COMMAND: {secret: 'CMD'}, ENV: {DB_URL: {secret: 'DB_URL'}, TOKEN: {SECRET: 'API_TOKEN'}}})).toEqual([])
    expect(checkInstanceConfig(openPluginSpec('X'), {ANYTHING: {deep: [{secret: 'OK_NAME'}]}})).toEqual([])
    const bad = checkInstanceConfig(app, {COMMAND: 'run', ENV: {DB_URL: {secret: 'db-url'}}})
    expect(bad).toMatchObject([{rule: 'config-secret', path: ['ENV', 'DB_URL', 'secret'], suggestion: 'DB_URL'}])
    const deep = checkInstanceConfig(openPluginSpec('X'), {ANYTHING: {deep: [{secret: '9lives'}]}})
    expect(deep).toMatchObject([{rule: 'config-secret', path: ['ANYTHING', 'deep', 0, 'secret']}])
  })

  it('are refused where the value is not a string (a number, a boolean, a fixed-key object)', () => {
    for (const config of [{COMMAND: 'x', PROCESS_DELAY: {secret: 'D'}}, {COMMAND: 'x', DISABLED: {secret: 'D'}}, {COMMAND: 'x', HEALTH_CHECK: {secret: 'D'}}]) {
      const problems = checkInstanceConfig(app, config)
      expect(problems).toMatchObject([{rule: 'config-secret', message: expect.stringMatching(/stands for a string/)}])
    }
  })

  it('compile to one spelling, {"secret": NAME}, and stay references (no value anywhere)', () => {
    const compiled = applyDefaults('PROCESS_APP_RUNNER', {command: 'x', env: {A: {SECRET: 'A_1'}}, cwd: {secret: 'WORK'}})
    expect(compiled.ENV).toEqual({A: {secret: 'A_1'}})
    expect(compiled.CWD).toEqual({secret: 'WORK'})
    // a longer object is not a reference: left as written
    expect(applyDefaults('X', {OTHER: {secret: 'A', more: 1}}).OTHER).toEqual({secret: 'A', more: 1})
  })
})
