import {BaseCommand, brokerDataDirFlag} from '../../../base-command.js'
import type {BrokerUser} from '../../../broker/users.js'

export default class BrokerUserLs extends BaseCommand<typeof BrokerUserLs> {
  static override summary = "List the broker's users (name, role, address; never passwords)"
  static override examples = ['<%= config.bin %> broker user ls', '<%= config.bin %> broker user ls --data-dir /var/lib/r1-broker --json']
  static override flags = {...brokerDataDirFlag}

  public async run(): Promise<{users: BrokerUser[]; file: string}> {
    const [{defaultDataDir}, {listUsers, usersPath}] = await Promise.all([import('../../../runtime/data-dir.js'), import('../../../broker/users.js')])
    const dataDir = this.flags['data-dir'] ?? defaultDataDir(process.env, 'broker')
    const users = await listUsers(dataDir)
    const file = usersPath(dataDir)
    if (!this.jsonEnabled()) {
      if (users.length === 0) process.stderr.write(`No users in ${file}: the broker serves loopback only, without logins (r1 broker user add).\n`)
      const width = Math.max(4, ...users.map((u) => u.name.length))
      for (const user of users) process.stdout.write(`${user.name.padEnd(width)}  ${user.role.padEnd(6)}  ${user.address}\n`)
    }
    return {users, file}
  }
}
