import {Args, Flags} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../base-command.js'

export default class Restart extends BaseCommand<typeof Restart> {
  static override summary = "Restart every instance of a pipeline, or one instance, in new processes"
  static override description = 'Sent as R1_RESTART: each instance is stopped politely and started again, its RESTARTS counter goes up by one. Confirmed by PIPELINE_OK naming the restarted instances. Disabled instances are left alone.'
  static override examples = ['<%= config.bin %> restart temps --target edge-a', '<%= config.bin %> restart temps monitor-1 --all --json']

  static override args = {
    pipeline: Args.string({description: 'Pipeline NAME', required: true}),
    instance: Args.string({description: 'INSTANCE_ID (default: every instance of the pipeline)'}),
  }

  static override flags = {
    ...fleetFlags,
    signature: Flags.string({description: 'SIGNATURE of the instance, when its id is used by several plugins'}),
  }

  public async run() {
    const [{manage, restartInstances}, {renderTargetResults}] = await Promise.all([import('../deploy/manage.js'), import('../deploy/render.js')])
    const args = {pipeline: this.args.pipeline, instanceId: this.args.instance, signature: this.flags.signature}
    const result = await manage(this.flags, this.signal, (link, _target, timeoutMs) => restartInstances(link, args, timeoutMs))
    const detail = (i: number) => {
      const restarted = result.targets[i].result?.restarted ?? []
      return restarted.length === 0 ? 'nothing to restart' : `restarted ${restarted.join(', ')}`
    }
    return this.finishFleet(`Restarting ${this.args.pipeline}`, result, (out) => renderTargetResults(result.targets, detail, out))
  }
}
