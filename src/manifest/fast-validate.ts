import {R1Error} from '../errors.js'

/**
 * `r1 validate [path] [--json] [--strict]` without loading oclif (~150 ms of start-up), for
 * bin/run.js to try first: `r1 validate` runs in CI on every push and has a start-up budget
 * (ARCHITECTURE.md §8). Prints exactly what the oclif command prints and returns the exit code; returns
 * undefined, having printed nothing, for anything else (other flags, --help, errors such as a
 * missing file), which oclif then handles as usual. Loads neither yaml@2 (only for diagnostics,
 * see validate.ts) nor chalk (only when color is on).
 */
export async function fastValidate(argv: readonly string[]): Promise<number | undefined> {
  if (argv[0] !== 'validate') return undefined
  let path: string | undefined
  let json = false
  let strict = false
  for (const arg of argv.slice(1)) {
    if (arg === '--json') json = true
    else if (arg === '--strict') strict = true
    else if (!arg.startsWith('-') && path === undefined) path = arg
    else return undefined
  }
  const {validateProject} = await import('./validate.js')
  let result
  try {
    result = await validateProject(path ?? '.')
  } catch (error) {
    if (error instanceof R1Error) return undefined
    throw error
  }
  const {colorLevel} = await import('../ui/color-level.js')
  const report = !json && colorLevel(process.stdout) > 0 ? (await import('./format.js')).validationReport(result, {strict, color: true}) : (await import('./report.js')).validationReport(result, {strict})
  process.stdout.write(json ? JSON.stringify(report.json, null, 2) + '\n' : report.text)
  return report.exitCode
}
