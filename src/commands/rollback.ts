import {Args, Flags} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../base-command.js'

export default class Rollback extends BaseCommand<typeof Rollback> {
  static override summary = "Put a pipeline back to its previous version (or --to a given one) from the node's archive"
  static override description = 'Nodes keep the last few versions of each pipeline. Confirmed by PIPELINE_OK with the restored version.'
  static override examples = ['<%= config.bin %> rollback temps --target edge-a', '<%= config.bin %> rollback temps --to 3 --all --json']

  static override args = {name: Args.string({description: 'Pipeline NAME', required: true})}
  static override flags = {
    ...fleetFlags,
    to: Flags.integer({description: 'Version to restore (default: the one before the current)', min: 1}),
  }

  public async run() {
    const [{manage, rollbackPipeline}, {renderTargetResults}] = await Promise.all([import('../deploy/manage.js'), import('../deploy/render.js')])
    const result = await manage(this.flags, this.signal, (link, _target, timeoutMs) => rollbackPipeline(link, this.args.name, this.flags.to, timeoutMs))
    const detail = (i: number) => {
      const r = result.targets[i].result
      return `${this.args.name} rolled back${r?.restored === undefined ? '' : ` to version ${r.restored}`}${r?.version === undefined ? '' : ` (now v${r.version})`}`
    }
    return this.finishFleet(`Rolling back ${this.args.name}`, result, (out) => renderTargetResults(result.targets, detail, out))
  }
}
