import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import type {RolloutRecord} from '../../fleet/history.js'

export default class RolloutsShow extends BaseCommand<typeof RolloutsShow> {
  static override summary = 'Show one rollout: its waves and each target’s outcome (updated, rolled back, failed to roll back, untouched)'
  static override examples = ['<%= config.bin %> rollouts show 20261203-145501-3fa2', '<%= config.bin %> rollouts show last --json']

  static override args = {id: Args.string({description: 'Rollout id (`r1 rollouts ls`), or `last`', required: true})}
  static override flags = {dir: Flags.string({char: 'd', description: 'Project folder (holds config.yaml)', default: '.'})}

  public async run(): Promise<RolloutRecord> {
    const [{readRollout}, {renderRolloutRecord}] = await Promise.all([import('../../fleet/history.js'), import('../../deploy/render.js')])
    const record = await readRollout(this.flags.dir, this.args.id)
    if (!this.jsonEnabled()) {
      const {out} = await import('../../ui/colors.js')
      process.stdout.write(renderRolloutRecord(record, out).join('\n') + '\n')
    }
    return record
  }
}
