import {Args} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class PipelinesHistory extends BaseCommand<typeof PipelinesHistory> {
  static override summary = 'Show the versions a node keeps of a pipeline: when, who (sender address) and why (deploy --message)'
  static override description = 'Oldest first; `*` marks the version the node runs (or keeps, for a stopped pipeline). These are the versions `r1 rollback --to` picks from.'
  static override examples = ['<%= config.bin %> pipelines history temps --target edge-a', '<%= config.bin %> pipelines history temps --all --json']

  static override args = {name: Args.string({description: 'Pipeline NAME', required: true})}
  static override flags = {...fleetFlags}

  public async run() {
    const [{manage, pipelineHistory}, {renderHistory}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/render.js')])
    const result = await manage(this.flags, this.signal, (link) => pipelineHistory(link, this.args.name), {readOnly: true})
    return this.finishFleet(`History of ${this.args.name}`, result, (out) => renderHistory(result.targets, out))
  }
}
