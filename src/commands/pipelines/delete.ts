import {Args} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {fleetFlags} from '../deploy.js'

export default class PipelinesDelete extends BaseCommand<typeof PipelinesDelete> {
  static override summary = 'Delete a pipeline from nodes (DELETE_CONFIG), confirmed by the node'
  static override examples = ['<%= config.bin %> pipelines delete temps --target edge-a', '<%= config.bin %> pipelines delete temps --all --json']

  static override args = {name: Args.string({description: 'Pipeline NAME', required: true})}
  static override flags = {...fleetFlags}

  public async run() {
    const [{manage, deletePipeline}, {failureOf}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/fanout.js')])
    const result = await manage(this.flags, this.signal, (link, _target, timeoutMs) => deletePipeline(link, this.args.name, timeoutMs))
    if (!this.jsonEnabled()) {
      const [{out, err}, {reportTargets}] = await Promise.all([import('../../ui/colors.js'), import('../../deploy/render.js')])
      const report = reportTargets(result.targets, () => `${this.args.name} deleted`, {out, err}, failureOf('Deleting ' + this.args.name, result.targets))
      process.stdout.write(report.stdout)
      process.stderr.write(report.stderr)
    }
    process.exitCode = result.exitCode
    return result
  }
}
