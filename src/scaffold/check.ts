import {stat} from 'node:fs/promises'
import {join} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'

/**
 * Fails with exit 3 unless `dir` holds a valid config.yaml; the message carries the validator's
 * diagnostics (`file:line:col`). `what` names the folder in the message ("Template x", "The generated project").
 */
export async function checkProjectDir(dir: string, what: string, options: {color?: boolean} = {}): Promise<void> {
  const {validateProject, formatDiagnostics} = await import('../manifest/index.js')
  const hasConfig = await stat(join(dir, 'config.yaml')).then((s) => s.isFile(), () => false)
  if (!hasConfig) {
    throw new R1Error(`${what} has no config.yaml, so it is not an r1 project.`, ExitCode.INVALID_CONFIG, {
      code: 'TEMPLATE_INVALID',
      hint: 'A template is a folder holding a valid config.yaml (and what it references); `r1 templates` lists the built-in ones.',
    })
  }
  const result = await validateProject(dir)
  if (result.valid) return
  const errors = result.diagnostics.filter((d) => d.severity === 'error')
  throw new R1Error(
    `${what} is not a valid r1 project (${errors.length} error${errors.length === 1 ? '' : 's'} in config.yaml):\n${formatDiagnostics({file: result.file, diagnostics: errors}, {color: options.color ?? false})}`,
    ExitCode.INVALID_CONFIG,
    {code: 'TEMPLATE_INVALID', hint: 'Fix the template (`r1 validate <template-dir>` shows the same diagnostics) or pick another.', details: errors},
  )
}
