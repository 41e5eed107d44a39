import {Flags} from '@oclif/core'
import {BaseCommand, targetFlags} from '../base-command.js'
import type {DoctorReport} from '../doctor/checks.js'

export default class Doctor extends BaseCommand<typeof Doctor> {
  static override summary = 'Check this machine, the project and every target: Node, key file, config.yaml, reachability, TLS, address, clock, allow-list'
  static override description =
    'Each check has a stable id, a status (ok, warn, fail, skip) and, when something is wrong, how to fix it. With no target flag every target of config.yaml is checked; --target, --tag, --env, --all, --node and --broker choose as for deploy (with --broker and no --address: every node heard on it). Exits 0 when no check failed (with --strict: and none warned), 1 otherwise.'

  static override examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --env production --json',
    '<%= config.bin %> doctor --tag site=north --strict',
    '<%= config.bin %> doctor --node wss://10.0.0.5:7443 --address 0xai_A2pP…',
    '<%= config.bin %> doctor --broker mqtt://10.0.0.2:1883 --tag site=north',
  ]

  static override flags = {
    ...targetFlags,
    'max-concurrent': Flags.integer({description: 'Targets checked at once (default 8, or 256 when every target is reached through a broker)', min: 1}),
    strict: Flags.boolean({description: 'Fail (exit 1) on warnings too'}),
  }

  public async run(): Promise<DoctorReport> {
    const {runDoctor} = await import('../doctor/run.js')
    const report = await runDoctor({
      dir: this.flags.dir,
      selection: this.flags,
      caFile: this.flags.ca,
      connectTimeoutMs: this.flags['connect-timeout'] * 1000,
      maxConcurrent: this.flags['max-concurrent'],
      strict: this.flags.strict,
    })
    if (!this.jsonEnabled()) {
      const [{out}, {renderDoctor}] = await Promise.all([import('../ui/colors.js'), import('../doctor/render.js')])
      process.stdout.write(renderDoctor(report, out))
    }
    process.exitCode = report.exitCode
    return report
  }
}
