import {Args} from '@oclif/core'
import {BaseCommand, nodeDataDirFlag} from '../../base-command.js'

export default class NodeDisallow extends BaseCommand<typeof NodeDisallow> {
  static override summary = "Take an address off a node's allow-list"
  static override description =
    'Works while the node runs: its next command from that address is refused (NOT_ALLOWED), and a subscription it holds (r1 logs) ends within one ping period.'
  static override examples = ['<%= config.bin %> node disallow 0xai_AtAmjZvjc7TDO_lwlOSxrhQghM9ZN8GLyeTqwa-__U81', '<%= config.bin %> node disallow "$(r1 keys show)" --data-dir ./node-a --json']

  static override args = {
    address: Args.string({description: 'The address to take off (0xai_…).', required: true}),
  }

  static override flags = {
    ...nodeDataDirFlag,
  }

  public async run(): Promise<{address: string; removed: boolean; file: string}> {
    const [{defaultDataDir}, {disallowAddress, allowListPath}, {normalizeAddress}] = await Promise.all([
      import('../../runtime/data-dir.js'),
      import('../../runtime/server-allowlist.js'),
      import('../../protocol/identity.js'),
    ])
    const dataDir = this.flags['data-dir'] ?? defaultDataDir()
    const {removed} = await disallowAddress(dataDir, this.args.address)
    const address = normalizeAddress(this.args.address)
    if (!this.jsonEnabled()) process.stdout.write(`${removed ? 'Removed' : 'Was not allowed'}: ${address}\n`)
    return {address, removed, file: allowListPath(dataDir)}
  }
}
