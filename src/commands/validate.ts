import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {ExitCode} from '../errors.js'
import type {Diagnostic} from '../manifest/diagnostics.js'

export interface ValidateResult {
  valid: boolean
  file: string
  diagnostics: Diagnostic[]
}

export default class Validate extends BaseCommand<typeof Validate> {
  static override summary = 'Check config.yaml statically: YAML, schema, references, instance config, targets'
  static override description =
    'Reports every problem at once, each with file:line:col, severity, rule id and a code frame. No plugin code runs. Exits 0 when valid, 3 when not (with --strict also on warnings).'

  static override examples = [
    '<%= config.bin %> validate',
    '<%= config.bin %> validate path/to/project',
    '<%= config.bin %> validate config.yaml --strict',
    '<%= config.bin %> validate --json',
  ]

  static override args = {
    path: Args.string({description: 'Project folder or its config.yaml', default: '.'}),
  }

  static override flags = {
    strict: Flags.boolean({description: 'Fail (exit 3) on warnings too'}),
  }

  public async run(): Promise<ValidateResult> {
    // Loaded here, not at module top: `r1 --help` and other commands never pay for yaml and zod.
    const {validateProject} = await import('../manifest/validate.js')
    const result = await validateProject(this.args.path)
    const failed = !result.valid || (this.flags.strict && result.diagnostics.length > 0)
    if (failed) process.exitCode = ExitCode.INVALID_CONFIG

    if (!this.jsonEnabled()) {
      const {formatDiagnostics, formatSummary} = await import('../manifest/format.js')
      const {out} = await import('../ui/colors.js')
      const color = out.level > 0
      if (result.diagnostics.length > 0) process.stdout.write(formatDiagnostics(result, {color}) + '\n')
      process.stdout.write(formatSummary(result, {color, strict: this.flags.strict}) + '\n')
    }
    return {valid: !failed, file: result.file, diagnostics: result.diagnostics}
  }
}
