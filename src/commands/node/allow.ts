import {Args, Flags} from '@oclif/core'
import {BaseCommand, nodeDataDirFlag} from '../../base-command.js'

export default class NodeAllow extends BaseCommand<typeof NodeAllow> {
  static override summary = "Allow an address to send commands to a node (edits the node's allow-list)"
  static override description = 'Works while the node runs: it re-reads allowed.json in its data dir on the next command.'
  static override examples = ['<%= config.bin %> node allow 0xai_AtAmjZvjc7TDO_lwlOSxrhQghM9ZN8GLyeTqwa-__U81 --alias laptop', '<%= config.bin %> node allow "$(r1 keys show)" --data-dir ./node-a']

  static override args = {
    address: Args.string({description: 'The address to allow (0xai_…; `r1 keys show` prints yours).', required: true}),
  }

  static override flags = {
    alias: Flags.string({description: 'A name for this address.'}),
    ...nodeDataDirFlag,
  }

  public async run(): Promise<{address: string; alias?: string; added: boolean; file: string}> {
    const [{defaultDataDir}, {allowAddress, allowListPath}, {normalizeAddress}] = await Promise.all([
      import('../../runtime/data-dir.js'),
      import('../../runtime/server-allowlist.js'),
      import('../../protocol/identity.js'),
    ])
    const dataDir = this.flags['data-dir'] ?? defaultDataDir()
    const {added} = await allowAddress(dataDir, this.args.address, this.flags.alias)
    const address = normalizeAddress(this.args.address)
    const file = allowListPath(dataDir)
    if (!this.jsonEnabled()) process.stdout.write(`${added ? 'Allowed' : 'Already allowed'}: ${address}${this.flags.alias ? ` (${this.flags.alias})` : ''}\n`)
    return {address, ...(this.flags.alias ? {alias: this.flags.alias} : {}), added, file}
  }
}
