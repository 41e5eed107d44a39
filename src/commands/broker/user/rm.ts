import {Args} from '@oclif/core'
import {BaseCommand, brokerDataDirFlag} from '../../../base-command.js'
import {ExitCode, R1Error} from '../../../errors.js'

export default class BrokerUserRm extends BaseCommand<typeof BrokerUserRm> {
  static override summary = 'Remove a broker user (its next login is refused; a connected client stays until it disconnects)'
  static override examples = ['<%= config.bin %> broker user rm edge-a']
  static override args = {name: Args.string({description: 'Login name.', required: true})}
  static override flags = {...brokerDataDirFlag}

  public async run(): Promise<{name: string; removed: true; file: string}> {
    const [{defaultDataDir}, {removeUser, usersPath}] = await Promise.all([import('../../../runtime/data-dir.js'), import('../../../broker/users.js')])
    const dataDir = this.flags['data-dir'] ?? defaultDataDir(process.env, 'broker')
    const file = usersPath(dataDir)
    if (!(await removeUser(dataDir, this.args.name))) {
      throw new R1Error(`No broker user named ${this.args.name} in ${file}`, ExitCode.FAILURE, {code: 'BROKER_USER_UNKNOWN', hint: '`r1 broker user ls` lists them.'})
    }
    if (!this.jsonEnabled()) process.stdout.write(`Removed ${this.args.name} from ${file}\n`)
    return {name: this.args.name, removed: true, file}
  }
}
