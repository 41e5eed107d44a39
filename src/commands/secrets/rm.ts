import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'

export default class SecretsRm extends BaseCommand<typeof SecretsRm> {
  static override summary = "Remove a target's secret from this project's store"
  static override description = 'It takes effect on the node at the next deploy. Without --target, the only target that holds the secret.'
  static override examples = ['<%= config.bin %> secrets rm DB_URL', '<%= config.bin %> secrets rm DB_URL --target edge-a --json']

  static override args = {name: Args.string({description: 'Secret NAME', required: true, ignoreStdin: true})}
  static override flags = {
    target: Flags.string({char: 't', description: 'Target from config.yaml `targets`'}),
    dir: Flags.string({char: 'd', description: 'Project folder (holds config.yaml)', default: '.'}),
  }

  public async run() {
    const {removeProjectSecret} = await import('../../secrets/project.js')
    const removed = await removeProjectSecret(this.flags.dir, this.args.name, this.flags.target)
    this.note(`✔ ${removed.name} removed for ${removed.target}`)
    return {...removed, removed: true}
  }
}
