import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {fleetFlags} from './deploy.js'

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
    const [{manage, rollbackPipeline}, {failureOf}] = await Promise.all([import('../deploy/manage.js'), import('../deploy/fanout.js')])
    const result = await manage(this.flags, this.signal, (link, _target, timeoutMs) => rollbackPipeline(link, this.args.name, this.flags.to, timeoutMs))
    if (!this.jsonEnabled()) {
      const [{out, err}, {reportTargets}] = await Promise.all([import('../ui/colors.js'), import('../deploy/render.js')])
      const detail = (i: number) => {
        const r = result.targets[i].result
        return `${this.args.name} rolled back${r?.restored === undefined ? '' : ` to version ${r.restored}`}${r?.version === undefined ? '' : ` (now v${r.version})`}`
      }
      const report = reportTargets(result.targets, detail, {out, err}, failureOf(`Rolling back ${this.args.name}`, result.targets))
      process.stdout.write(report.stdout)
      process.stderr.write(report.stderr)
    }
    process.exitCode = result.exitCode
    return result
  }
}
