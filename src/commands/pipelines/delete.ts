import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {fleetFlags} from '../deploy.js'

export default class PipelinesDelete extends BaseCommand<typeof PipelinesDelete> {
  static override summary = 'Delete a pipeline from nodes (DELETE_CONFIG), confirmed by the node'
  static override examples = ['<%= config.bin %> pipelines delete temps --target edge-a --yes', '<%= config.bin %> pipelines delete temps --all --yes --json']

  static override args = {name: Args.string({description: 'Pipeline NAME', required: true})}
  static override description = 'Asks first on a terminal; without one, --yes is required. The node drops the kept versions too (`pipelines stop` keeps them for rollback).'
  static override flags = {...fleetFlags, yes: Flags.boolean({char: 'y', description: 'Delete without asking'})}

  public async run() {
    const [{manage, deletePipeline, confirmDelete}, {failureOf}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/fanout.js')])
    await confirmDelete(this.args.name, {yes: this.flags.yes, json: this.jsonEnabled()})
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
