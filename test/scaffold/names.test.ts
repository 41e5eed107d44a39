import {describe, expect, it} from 'vitest'
import {projectNameProblem, signatureProblem, toKebabCase, toUpperSnakeCase} from '../../src/scaffold/names.js'

describe('project names', () => {
  it('accepts kebab-case', () => {
    for (const name of ['a', 'my-plugin', 'sensor-watch-2', 'x1']) expect(projectNameProblem(name)).toBeUndefined()
  })

  it('rejects anything else, with a suggestion when one exists', () => {
    expect(projectNameProblem('')).toMatch(/empty/)
    expect(projectNameProblem('My Plugin')).toMatch(/not kebab-case.*did you mean "my-plugin"/)
    expect(projectNameProblem('sensorWatch')).toMatch(/did you mean "sensor-watch"/)
    expect(projectNameProblem('my_plugin')).toMatch(/did you mean "my-plugin"/)
    for (const name of ['-a', 'a-', 'a--b', '1abc', 'a.b', 'café']) expect(projectNameProblem(name)).toMatch(/not kebab-case/)
    expect(projectNameProblem('a'.repeat(65))).toMatch(/longer than 64/)
  })
})

describe('signatures', () => {
  it('accepts UPPER_SNAKE', () => {
    for (const signature of ['A', 'MY_PLUGIN', 'CUSTOM_EXEC_01', 'TEMP2']) expect(signatureProblem(signature)).toBeUndefined()
  })

  it('rejects anything else, with a suggestion when one exists', () => {
    expect(signatureProblem('')).toMatch(/empty/)
    expect(signatureProblem('my-plugin')).toMatch(/not UPPER_SNAKE.*did you mean "MY_PLUGIN"/)
    expect(signatureProblem('tempMonitor')).toMatch(/did you mean "TEMP_MONITOR"/)
    for (const signature of ['_A', 'A_', 'A__B', '1A', 'A-B']) expect(signatureProblem(signature)).toMatch(/not UPPER_SNAKE/)
  })

  it('converts between the cases', () => {
    expect(toUpperSnakeCase('sensor-watch')).toBe('SENSOR_WATCH')
    expect(toKebabCase('SENSOR_WATCH')).toBe('sensor-watch')
    expect(toKebabCase('My Sensor v2')).toBe('my-sensor-v2')
  })
})
