import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {ExitCode, R1Error} from '../../errors.js'

export default class SecretsSet extends BaseCommand<typeof SecretsSet> {
  static override summary = "Set a secret for a target, sealed to its node's key (value from stdin or a hidden prompt)"
  static override description =
    "The value is read from stdin when it is piped, else asked at a hidden prompt; never from the command line (shell history, ps). It is stored in .r1/secrets.json (mode 0600, git-ignored) encrypted to the target node's address: only that node can read it, not even you. An instance refers to it in config.yaml as `DB_URL: {secret: DB_URL}`."
  static override examples = [
    '<%= config.bin %> secrets set DB_URL',
    'printf %s "$DB_URL" | <%= config.bin %> secrets set DB_URL --target edge-a',
    '<%= config.bin %> secrets set API_TOKEN --target edge-b --json < token.txt',
  ]

  // ignoreStdin: oclif would otherwise read piped stdin (the value) into a missing arg.
  static override args = {
    name: Args.string({description: 'Secret NAME (UPPER_SNAKE_CASE)', required: true, ignoreStdin: true}),
    value: Args.string({description: 'Refused: values never come from the command line', hidden: true, ignoreStdin: true}),
  }

  static override flags = {
    target: Flags.string({char: 't', description: 'Target from config.yaml `targets` (required when there are several)'}),
    dir: Flags.string({char: 'd', description: 'Project folder (holds config.yaml)', default: '.'}),
  }

  public async run() {
    const {name, value} = this.args
    if (value !== undefined) {
      throw new R1Error('A secret value is never taken from the command line (it would stay in shell history and show in ps).', ExitCode.USAGE, {
        code: 'SECRET_IN_ARGV',
        hint: `Pipe it: printf %s "$VALUE" | r1 secrets set ${name}, or run \`r1 secrets set ${name}\` on a terminal for a hidden prompt.`,
      })
    }
    const [{checkSecretName, setSecret}, {secretTarget}, {readSecretValue}] = await Promise.all([
      import('../../secrets/store.js'),
      import('../../secrets/project.js'),
      import('../../secrets/input.js'),
    ])
    checkSecretName(name)
    const {project, target} = await secretTarget(this.flags.dir, this.flags.target)
    const secret = await readSecretValue(name, {json: this.jsonEnabled(), signal: this.signal})
    const {entry, dropped} = await setSecret(project.dir, target, name, secret)
    if (dropped.length > 0) this.note(`Target ${target.name} has a new node address: dropped ${dropped.join(', ')} (sealed to the old node); set them again.`)
    this.note(`✔ ${name} set for ${target.name} (sealed to ${target.address})`)
    return {...entry, dropped}
  }
}
