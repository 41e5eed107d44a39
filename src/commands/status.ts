import {BaseCommand} from '../base-command.js'
import type {NodeStatus} from '../deploy/manage.js'
import {fleetFlags} from './deploy.js'

export default class Status extends BaseCommand<typeof Status> {
  static override summary = 'Show nodes: online, address, version, uptime, CPU/memory, pipelines, instance statuses'
  static override description = 'Per target, from the node state and its heartbeat. Instances in error show their last error. Same exit codes as deploy (6 when some targets are unreachable).'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --all --json', '<%= config.bin %> status --node ws://127.0.0.1:7443 --address 0xai_…']

  static override flags = {...fleetFlags}

  public async run() {
    const [{manage, nodeStatus}, {failureOf}] = await Promise.all([import('../deploy/manage.js'), import('../deploy/fanout.js')])
    const result = await manage(this.flags, this.signal, (link) => nodeStatus(link))
    if (!this.jsonEnabled()) {
      const [{out, err}, {renderNodeStatus}] = await Promise.all([import('../ui/colors.js'), import('../deploy/render.js')])
      const blocks = result.targets.map((t) =>
        t.result ? renderNodeStatus(t.target, t.result as NodeStatus, out).join('\n') : `${out.bold(t.target)} ${out.red(t.status)}  ${t.url}\n  ${t.error ?? ''}`,
      )
      process.stdout.write(blocks.join('\n\n') + '\n')
      const failure = failureOf('Status', result.targets)
      if (failure) process.stderr.write(`${err.red('✖')} ${failure.message}\n${err.dim('→ ' + failure.hint)}\n`)
    }
    process.exitCode = result.exitCode
    return result
  }
}
