import {BaseCommand, fleetFlags} from '../base-command.js'

export default class Status extends BaseCommand<typeof Status> {
  static override summary = 'Show nodes: online, address, version, uptime, CPU/memory, pipelines, instance statuses'
  static override description = 'Per target, from the node state and its heartbeat. Instances in error show their last error. Past 20 targets, one row per node (instance counts, and what needs a look). With --broker and no --address, every node heard on the broker within --discover seconds (filter with --tag). Same exit codes as deploy (6 when some targets are unreachable).'
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status --all --json',
    '<%= config.bin %> status --node ws://127.0.0.1:7443 --address 0xai_…',
    '<%= config.bin %> status --broker mqtt://127.0.0.1:1883 --tag site=lab',
  ]

  static override flags = {
    ...fleetFlags,
  }

  public async run() {
    const [{statusOfNodes}, {renderStatusReport}] = await Promise.all([import('../deploy/manage.js'), import('../deploy/render.js')])
    const result = await statusOfNodes(this.flags, this.signal)
    return this.finishFleet('Status', result, (out) => renderStatusReport(result.targets, out))
  }
}
