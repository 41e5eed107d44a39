import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'

export default class SecretsLs extends BaseCommand<typeof SecretsLs> {
  static override summary = 'List the secrets set for this project: names, targets and when set (never values)'
  static override description =
    'A secret marked stale was sealed to a node address that config.yaml no longer gives its target (or a target it no longer has): that node cannot read it; set it again.'
  static override examples = ['<%= config.bin %> secrets ls', '<%= config.bin %> secrets ls --target edge-a --json']

  static override flags = {
    target: Flags.string({char: 't', description: 'Only this target'}),
    dir: Flags.string({char: 'd', description: 'Project folder (holds config.yaml)', default: '.'}),
  }

  public async run() {
    const {listProjectSecrets} = await import('../../secrets/project.js')
    const result = await listProjectSecrets(this.flags.dir, this.flags.target)
    if (!this.jsonEnabled()) {
      const {renderSecrets} = await import('../../secrets/render.js')
      const {out} = await import('../../ui/colors.js')
      process.stdout.write(renderSecrets(result.secrets, out))
      if (result.secrets.length === 0) this.note('No secrets set. Add one with: r1 secrets set NAME')
    }
    return result
  }
}
