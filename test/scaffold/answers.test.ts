import {describe, expect, it} from 'vitest'
import {chooseTemplate, defaultProjectName, resolveAnswers} from '../../src/scaffold/answers.js'
import type {Asker} from '../../src/scaffold/prompts.js'
import type {TemplateMeta} from '../../src/scaffold/template.js'

const plugin: TemplateMeta = {description: 'd', variables: {name: 'my-plugin', signature: 'MY_PLUGIN'}, rename: {}, exclude: []}
const stack: TemplateMeta = {description: 'd', variables: {name: 'my-app-stack', signature: 'SENSOR_FEED'}, rename: {}, exclude: []}
const noPlugin: TemplateMeta = {description: 'd', variables: {name: 'my-process-app'}, rename: {}, exclude: []}

/** A terminal that answers from a script and records the questions (the real one is driven on a pty in test/e2e/init.test.ts). */
function scripted(answers: unknown[]): Asker & {asked: string[]} {
  const asked: string[] = []
  const next = (message: string) => {
    asked.push(message)
    if (answers.length === 0) throw new Error(`unexpected question: ${message}`)
    return answers.shift()
  }
  return {
    asked,
    select: async (message) => next(message) as never,
    input: async (message, _initial, validate) => {
      const answer = next(message) as string
      expect(await validate(answer)).toBeUndefined()
      return answer
    },
    confirm: async (message) => next(message) as boolean,
  }
}

describe('without a terminal', () => {
  it('lists every missing answer at once, naming their flags (exit 2)', async () => {
    const all = await chooseTemplate({}, undefined).catch((e) => e)
    expect(all).toMatchObject({exitCode: 2, code: 'MISSING_FLAG'})
    for (const flag of ['--template', '--name', '--signature', '--install or --no-install', '--package-manager', '--git or --no-git']) expect(all.message).toContain(flag)
    const afterTemplate = await resolveAnswers({}, plugin, undefined).catch((e) => e)
    expect(afterTemplate.details.missing).toEqual(['--name <kebab-case>', '--signature <UPPER_SNAKE>', '--install or --no-install', '--package-manager <npm|pnpm|yarn>', '--git or --no-git'])
    // a folder argument names the project; no install means no package manager
    const folder = await resolveAnswers({install: false}, plugin, undefined, '/tmp/sensor-watch').catch((e) => e)
    expect(folder.details.missing).toEqual(['--signature <UPPER_SNAKE>', '--git or --no-git'])
    expect((await resolveAnswers({signature: 'A', install: false, git: false}, plugin, undefined, '/tmp/sensor-watch')).name).toBe('sensor-watch')
    // no --signature for a template without a plugin
    expect((await resolveAnswers({name: 'a', install: false}, noPlugin, undefined).catch((e) => e)).details.missing).toEqual(['--git or --no-git'])
  })

  it('takes every answer from flags', async () => {
    const answers = await resolveAnswers({name: 'a', signature: 'A', install: true, packageManager: 'pnpm', git: false}, plugin, undefined)
    expect(answers).toEqual({name: 'a', signature: 'A', install: true, packageManager: 'pnpm', git: false, warnings: []})
  })

  it('with --yes takes the defaults: ts-plugin, the folder name, its signature, install and git', async () => {
    expect(await chooseTemplate({yes: true}, undefined)).toBe('ts-plugin')
    const answers = await resolveAnswers({yes: true}, plugin, undefined, '/tmp/Sensor Watch')
    expect(answers).toMatchObject({name: 'sensor-watch', signature: 'SENSOR_WATCH', install: true, git: true})
    // a template whose signature is not its name in UPPER_SNAKE keeps its own
    expect((await resolveAnswers({yes: true, name: 'ops'}, stack, undefined)).signature).toBe('SENSOR_FEED')
  })

  it('rejects bad names before anything else (exit 2)', async () => {
    await expect(resolveAnswers({yes: true, name: 'My Project'}, plugin, undefined)).rejects.toMatchObject({exitCode: 2, code: 'NAME_INVALID', message: expect.stringMatching(/Invalid --name: "My Project" is not kebab-case.*"my-project"/)})
    await expect(resolveAnswers({yes: true, signature: 'temp-monitor'}, plugin, undefined)).rejects.toMatchObject({exitCode: 2, message: expect.stringMatching(/Invalid --signature.*"TEMP_MONITOR"/)})
  })

  it('ignores --signature, with a warning, for a template without a plugin', async () => {
    const answers = await resolveAnswers({yes: true, signature: 'X'}, noPlugin, undefined)
    expect(answers.signature).toBeUndefined()
    expect(answers.warnings).toEqual(['--signature X ignored: this template has no plugin of its own.'])
  })
})

describe('on a terminal', () => {
  it('offers only the package managers that are installed', async () => {
    let offered: string[] = []
    const asker: Asker = {
      select: async (_m, choices) => {
        offered = choices.map((c) => c.value)
        return choices[0].value
      },
      input: async (_m, initial) => initial,
      confirm: async () => true,
    }
    await resolveAnswers({name: 'a', signature: 'A'}, plugin, asker, undefined, false, ['npm', 'yarn'])
    expect(offered).toEqual(['npm', 'yarn'])
    // one installed: nothing to choose
    offered = []
    expect((await resolveAnswers({name: 'a', signature: 'A'}, plugin, asker, undefined, false, ['npm'])).packageManager).toBe('npm')
    expect(offered).toEqual([])
  })

  it('asks every question without a flag, the package manager only when installing', async () => {
    const asker = scripted(['js-plugin'])
    expect(await chooseTemplate({}, asker)).toBe('js-plugin')
    expect(asker.asked).toEqual(['Template'])

    const installing = scripted(['weather', 'WEATHER_FEED', true, 'yarn', false])
    expect(await resolveAnswers({}, plugin, installing, undefined, false, ['npm', 'pnpm', 'yarn'])).toMatchObject({name: 'weather', signature: 'WEATHER_FEED', install: true, packageManager: 'yarn', git: false})
    expect(installing.asked).toEqual(['Project name (kebab-case)', 'Signature of the first plugin (UPPER_SNAKE)', 'Install dependencies?', 'Package manager', 'Initialize a git repository?'])

    const notInstalling = scripted([false, true])
    expect(await resolveAnswers({name: 'x', signature: 'X'}, plugin, notInstalling)).toMatchObject({install: false, git: true})
    expect(notInstalling.asked).toEqual(['Install dependencies?', 'Initialize a git repository?'])
  })
})

it('on a terminal, without a folder argument, refuses a name whose folder is taken', async () => {
  let problem: string | undefined
  const asker: Asker = {
    select: async () => 'x' as never,
    confirm: async () => false,
    input: async (_message, initial, validate) => {
      problem = await validate('test') // ./test exists here (the working directory is the repository)
      expect(await validate('no-such-folder-here')).toBeUndefined()
      return initial
    },
  }
  await resolveAnswers({signature: 'A', install: false, git: false}, plugin, asker)
  expect(problem).toBe('folder ./test exists and is not empty (or pass --force)')
  // with a folder argument, or --force, the name is only a name
  await resolveAnswers({signature: 'A', install: false, git: false}, plugin, {...asker, input: async (_m, i, validate) => {
    expect(await validate('test')).toBeUndefined()
    return i
  }}, '/somewhere/else')
})

it('names a project after its folder when the folder name allows it', () => {
  expect(defaultProjectName(plugin, '/x/sensor-watch')).toBe('sensor-watch')
  expect(defaultProjectName(plugin, '/x/SensorWatch')).toBe('sensor-watch')
  expect(defaultProjectName(plugin, '/x/sensor-watch/.')).toBe('sensor-watch')
  expect(defaultProjectName(plugin, '/x/123')).toBe('my-plugin')
  expect(defaultProjectName(plugin)).toBe('my-plugin')
})
