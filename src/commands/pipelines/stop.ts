import {Args} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class PipelinesStop extends BaseCommand<typeof PipelinesStop> {
  static override summary = 'Stop a pipeline on nodes (ARCHIVE_CONFIG): its instances end, the node keeps it for rollback'
  static override description = 'A pipeline that is already stopped on a node stays so: that target reports "already stopped" and counts as done (exit 0).'
  static override examples = ['<%= config.bin %> pipelines stop temps --target edge-a', '<%= config.bin %> pipelines stop temps --all --json']

  static override args = {name: Args.string({description: 'Pipeline NAME', required: true})}
  static override flags = {...fleetFlags}

  public async run() {
    const [{manage, stopPipeline}, {renderTargetResults}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/render.js')])
    const result = await manage(this.flags, this.signal, (link, _target, timeoutMs) => stopPipeline(link, this.args.name, timeoutMs))
    const detail = (i: number) => `${this.args.name} ${result.targets[i].result?.alreadyStopped ? 'was already stopped' : 'archived'}`
    return this.finishFleet(`Stopping ${this.args.name}`, result, (out) => renderTargetResults(result.targets, detail, out))
  }
}
