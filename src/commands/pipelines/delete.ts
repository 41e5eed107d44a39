import {Args, Flags} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class PipelinesDelete extends BaseCommand<typeof PipelinesDelete> {
  static override summary = 'Delete a pipeline from nodes (DELETE_CONFIG), confirmed by the node'
  static override examples = ['<%= config.bin %> pipelines delete temps --target edge-a --yes', '<%= config.bin %> pipelines delete temps --all --yes --json']

  static override args = {name: Args.string({description: 'Pipeline NAME', required: true})}
  static override description = 'Asks first on a terminal; without one, --yes is required. The node drops the kept versions too (`pipelines stop` keeps them for rollback).'
  static override flags = {...fleetFlags, yes: Flags.boolean({char: 'y', description: 'Delete without asking'})}

  public async run() {
    const [{manage, deletePipeline, confirmDelete}, {renderTargetResults}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/render.js')])
    await confirmDelete(this.args.name, {yes: this.flags.yes, json: this.jsonEnabled()})
    const result = await manage(this.flags, this.signal, (link, _target, timeoutMs) => deletePipeline(link, this.args.name, timeoutMs))
    return this.finishFleet(`Deleting ${this.args.name}`, result, (out) => renderTargetResults(result.targets, () => `${this.args.name} deleted`, out))
  }
}
