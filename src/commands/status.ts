import {BaseCommand} from '../base-command.js'
import type {NodeStatus} from '../deploy/manage.js'
import {fleetFlags} from './deploy.js'

export default class Status extends BaseCommand<typeof Status> {
  static override summary = 'Show nodes: online, address, version, uptime, CPU/memory, pipelines, instance statuses'
  static override description = 'Per target, from the node state and its heartbeat. Instances in error show their last error. With --broker and no --address, every node heard on the broker within --discover seconds (filter with --tag). Same exit codes as deploy (6 when some targets are unreachable).'
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
    const [{statusOfNodes}, {failureOf}] = await Promise.all([import('../deploy/manage.js'), import('../deploy/fanout.js')])
    const result = await statusOfNodes(this.flags, this.signal)
    if (!this.jsonEnabled()) {
      const [{out, err}, {renderStatusReport, failureText}] = await Promise.all([import('../ui/colors.js'), import('../deploy/render.js')])
      process.stdout.write(renderStatusReport(result.targets as Array<{target: string; status: string; url: string; error?: string; result?: NodeStatus}>, out))
      const failure = failureOf('Status', result.targets)
      if (failure) process.stderr.write(failureText(failure, err))
    }
    process.exitCode = result.exitCode
    return result
  }
}
