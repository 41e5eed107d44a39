import {Flags} from '@oclif/core'
import {BaseCommand, brokerDataDirFlag} from '../../base-command.js'
import type {AclRule} from '../../broker/acl.js'
import type {BrokerUser} from '../../broker/users.js'

export default class BrokerAcl extends BaseCommand<typeof BrokerAcl> {
  static override summary = "Print each broker user's topics; --mosquitto prints them as a Mosquitto ACL file"
  static override description =
    'The rules the embedded broker applies: a node user reads only <root>/<its address>/config and writes <root>/ctrl, notif, payloads and <root>/+/payloads; a client user reads ctrl, notif, payloads and <root>/<its address>/payloads and writes <root>/+/config. --mosquitto writes the same rules as an acl_file, with the mosquitto.conf lines and the mosquitto_passwd commands that go with it.'
  static override examples = ['<%= config.bin %> broker acl', '<%= config.bin %> broker acl --mosquitto > /etc/mosquitto/r1.acl']
  static override flags = {
    mosquitto: Flags.boolean({description: 'Print a Mosquitto acl_file.'}),
    root: Flags.string({description: 'Topic root.', default: 'naeural'}),
    ...brokerDataDirFlag,
  }

  public async run(): Promise<{users: Array<BrokerUser & {rules: AclRule[]}>; mosquitto?: string}> {
    const [{defaultDataDir}, {listUsers, usersPath}, {aclRules}, {mosquittoAcl}] = await Promise.all([
      import('../../runtime/data-dir.js'),
      import('../../broker/users.js'),
      import('../../broker/acl.js'),
      import('../../broker/mosquitto.js'),
    ])
    const dataDir = this.flags['data-dir'] ?? defaultDataDir(process.env, 'broker')
    const users = await listUsers(dataDir)
    const withRules = users.map((user) => ({...user, rules: aclRules(user, this.flags.root)}))
    const mosquitto = this.flags.mosquitto ? mosquittoAcl(users, {root: this.flags.root, usersFile: usersPath(dataDir)}) : undefined
    if (!this.jsonEnabled()) {
      if (mosquitto) process.stdout.write(mosquitto)
      else if (users.length === 0) process.stderr.write(`No users in ${usersPath(dataDir)} (r1 broker user add).\n`)
      else for (const user of withRules) process.stdout.write(`${user.name} (${user.role} ${user.address})\n${user.rules.map((r) => `  ${r.access.padEnd(5)}  ${r.topic}\n`).join('')}`)
    }
    return {users: withRules, ...(mosquitto ? {mosquitto} : {})}
  }
}
