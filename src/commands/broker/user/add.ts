import {Args, Flags} from '@oclif/core'
import {BaseCommand, brokerDataDirFlag} from '../../../base-command.js'
import type {BrokerUser} from '../../../broker/users.js'

export default class BrokerUserAdd extends BaseCommand<typeof BrokerUserAdd> {
  static override summary = 'Add a broker user (or replace one): a node or a client, with the r1 address it acts for'
  static override description =
    "A node user may read only its own config topic and publish heartbeats, notifications and payloads; a client user reads the shared topics and its own targeted topic and sends to nodes' config topics. The password comes from --password-file, stdin, or a hidden prompt on a terminal; only its scrypt hash is stored (users.json, mode 0600). A running broker applies the change at the next login."
  static override examples = [
    '<%= config.bin %> broker user add edge-a --role node --address 0xai_AtAmjZvjc7TDO_lwlOSxrhQghM9ZN8GLyeTqwa-__U81 --password-file edge-a.pass',
    'printf %s "$PASSWORD" | <%= config.bin %> broker user add laptop --role client --address "$(r1 keys show)"',
  ]

  static override args = {
    name: Args.string({description: 'Login name (letters, digits, _ . @ -).', required: true}),
  }

  static override flags = {
    role: Flags.string({description: 'node or client.', options: ['node', 'client'], required: true}),
    address: Flags.string({description: 'The r1 address (0xai_…) this user acts for.', required: true}),
    'password-file': Flags.string({description: 'File holding the password (one trailing newline is dropped).'}),
    ...brokerDataDirFlag,
  }

  public async run(): Promise<{user: BrokerUser; replaced: boolean; file: string}> {
    const [{defaultDataDir}, {addUser, checkNewUser, readPassword, usersPath}] = await Promise.all([import('../../../runtime/data-dir.js'), import('../../../broker/users.js')])
    const dataDir = this.flags['data-dir'] ?? defaultDataDir(process.env, 'broker')
    const {name} = this.args
    checkNewUser({name, address: this.flags.address})
    const password = await readPassword(name, {file: this.flags['password-file'], json: this.jsonEnabled(), signal: this.signal})
    const {user, replaced} = await addUser(dataDir, {name, role: this.flags.role as BrokerUser['role'], address: this.flags.address, password})
    const file = usersPath(dataDir)
    if (!this.jsonEnabled()) process.stdout.write(`${replaced ? 'Replaced' : 'Added'} ${user.role} user ${user.name} (${user.address}) in ${file}\n`)
    return {user, replaced, file}
  }
}
