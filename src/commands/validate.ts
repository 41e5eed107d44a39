import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import type {ValidationReport} from '../manifest/format.js'

export type ValidateResult = ValidationReport['json']

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
    path: Args.string({description: 'Project folder or its config.yaml (or --dir)'}),
  }

  static override flags = {
    dir: Flags.string({char: 'd', description: 'Project folder (same as the path argument)'}),
    strict: Flags.boolean({description: 'Fail (exit 3) on warnings too'}),
  }

  public async run(): Promise<ValidateResult> {
    // Loaded here, not at module top: `r1 --help` and other commands never pay for yaml.
    const [{validateProject, projectPath}, {validationReport}, {out}] = await Promise.all([import('../manifest/validate.js'), import('../manifest/format.js'), import('../ui/colors.js')])
    const report = validationReport(await validateProject(projectPath(this.args.path, this.flags.dir)), {strict: this.flags.strict, color: out.level > 0})
    process.exitCode = report.exitCode
    if (!this.jsonEnabled()) process.stdout.write(report.text)
    return report.json
  }
}
