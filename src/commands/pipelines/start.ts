import {Args} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class PipelinesStart extends BaseCommand<typeof PipelinesStart> {
  static override summary = 'Start a pipeline stopped with `pipelines stop`: the node runs its archived version again'
  static override description = 'Sent as R1_ROLLBACK without a version (the node restores the archived version as a new one), confirmed by PIPELINE_OK. A pipeline that already runs on a node stays so: that target reports "already running" and counts as done (exit 0).'
  static override examples = ['<%= config.bin %> pipelines start temps --target edge-a', '<%= config.bin %> pipelines start temps --all --json']

  static override args = {name: Args.string({description: 'Pipeline NAME', required: true})}
  static override flags = {...fleetFlags}

  public async run() {
    const [{manage, startPipeline}, {renderTargetResults}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/render.js')])
    const result = await manage(this.flags, this.signal, (link, _target, timeoutMs) => startPipeline(link, this.args.name, timeoutMs))
    const detail = (i: number) => {
      const r = result.targets[i].result
      const version = r?.version === undefined ? '' : ` (v${r.version})`
      return `${this.args.name} ${r?.alreadyRunning ? 'was already running' : 'started'}${version}`
    }
    return this.finishFleet(`Starting ${this.args.name}`, result, (out) => renderTargetResults(result.targets, detail, out))
  }
}
