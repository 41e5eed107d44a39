// `r1 --version` and `r1 validate` of a generated 100-pipeline manifest, as ratios to `node -e 0` (budgets in src/ARCHITECTURE.md).
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {r1, row, wallMedian} from './lib.js'

/** A valid manifest with `count` pipelines of built-in instances. */
export function manifestWithPipelines(count) {
  const lines = ['name: bench-project', 'version: 0.1.0', 'description: 100 pipelines for the validate benchmark', 'pipelines:']
  for (let i = 0; i < count; i++) {
    lines.push(
      `  pipeline-${i}:`,
      '    type: Void',
      '    instances:',
      `      exec-${i}:`,
      '        plugin: CUSTOM_EXEC_01',
      `        config: { code: "return ${i}", process_delay: ${1 + (i % 5)} }`,
      `      app-${i}:`,
      '        plugin: PROCESS_APP_RUNNER',
      `        config: { command: "echo ${i}", restart_policy: on-failure }`,
    )
  }
  return lines.join('\n') + '\n'
}

export default async function startup() {
  const dir = mkdtempSync(join(tmpdir(), 'r1-bench-'))
  try {
    writeFileSync(join(dir, 'config.yaml'), manifestWithPipelines(100))
    const baseline = wallMedian(process.execPath, ['-e', '0'])
    const version = wallMedian(process.execPath, [r1, '--version'])
    const validate = wallMedian(process.execPath, [r1, 'validate', dir])
    return [
      row('r1 --version (median wall)', {value: version, unit: 'ms', baseline, baselineName: 'node -e 0', budget: 2}),
      row('r1 validate, 100 pipelines (median wall)', {value: validate, unit: 'ms', baseline, baselineName: 'node -e 0', budget: 3}),
    ]
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}
