import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import type {RolloutRecord} from '../../fleet/history.js'

export default class RolloutsLs extends BaseCommand<typeof RolloutsLs> {
  static override summary = "List the project's rollouts (deploy --waves / --canary): id, when, who, outcome"
  static override description = 'Oldest first, from .r1/rollouts/ in the project folder. `r1 rollouts show <id>` shows one per target.'
  static override examples = ['<%= config.bin %> rollouts ls', '<%= config.bin %> rollouts ls --json']

  static override flags = {dir: Flags.string({char: 'd', description: 'Project folder (holds config.yaml)', default: '.'})}

  public async run(): Promise<{rollouts: RolloutRecord[]}> {
    const [{listRollouts}, {renderRolloutList}] = await Promise.all([import('../../fleet/history.js'), import('../../deploy/render.js')])
    const rollouts = await listRollouts(this.flags.dir)
    if (!this.jsonEnabled()) {
      const {out} = await import('../../ui/colors.js')
      process.stdout.write(renderRolloutList(rollouts, out).join('\n') + '\n')
    }
    return {rollouts}
  }
}
