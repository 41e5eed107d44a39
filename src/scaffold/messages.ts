import {relative} from 'node:path'
import type {PackageManager} from './setup.js'
import type {TemplateInfo} from './template.js'

/** `r1 templates`: one line per template, ids aligned. */
export function formatTemplateList(templates: Array<Pick<TemplateInfo, 'id' | 'description'>>): string {
  const width = Math.max(0, ...templates.map((t) => t.id.length))
  return templates.map((t) => `${t.id.padEnd(width)}  ${t.description}`).join('\n')
}

/** What to do after `r1 init`, with paths relative to where the user is. */
export function nextSteps(result: {dir: string; name: string; template: string; installed: boolean}, manager: PackageManager, cwd: string): string {
  const rel = relative(cwd, result.dir) || '.'
  const exec = manager === 'npm' ? 'npx r1' : `${manager} r1`
  const steps: Array<[string, string]> = []
  if (rel !== '.') steps.push([`cd ${rel}`, ''])
  if (!result.installed) steps.push([`${manager} install`, ''])
  steps.push([`${exec} run`, 'run its pipelines locally'], [`${manager} test`, 'run its tests'], [`${exec} deploy --target <name>`, 'after adding a target to config.yaml'])
  const width = Math.max(...steps.map(([command]) => command.length))
  const lines = [`Created ${result.name} from ${result.template} in ${rel}`, '', 'Next:']
  for (const [command, why] of steps) lines.push(`  ${why ? `${command.padEnd(width)}  # ${why}` : command}`)
  return lines.join('\n')
}
