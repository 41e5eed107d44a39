import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import type {NodeInfo} from '../../session/info.js'

export default class NodeInfoCommand extends BaseCommand<typeof NodeInfoCommand> {
  static override summary = "Print a node's address, alias and version from its signed hello (to pin it as a target)"
  static override description =
    'Connects, checks the signature of the hello the node sends first, and prints the address that signed it: the `address` of a target in config.yaml. Sends no command. With --address, a node that proves another address is an identity mismatch (exit 4).'

  static override examples = [
    '<%= config.bin %> node info --node wss://10.0.0.5:7443 --ca node-cert.pem',
    '<%= config.bin %> node info --node ws://127.0.0.1:7443 --json',
    '<%= config.bin %> node info --node ws://127.0.0.1:7443 --address 0xai_A2pP…',
  ]

  static override flags = {
    node: Flags.string({description: 'The node URL (ws:// or wss://)', required: true}),
    address: Flags.string({description: 'The address you expect there: a different one is an identity mismatch (exit 4)'}),
    ca: Flags.string({description: 'PEM file of a CA (or self-signed certificate) to trust for a wss:// node'}),
    'connect-timeout': Flags.integer({description: 'Seconds to connect', default: 10, min: 1}),
  }

  public async run(): Promise<NodeInfo> {
    const [{nodeInfo}, {readCa}, {renderNodeInfo}, {out}] = await Promise.all([
      import('../../session/info.js'),
      import('../../deploy/link.js'),
      import('../../deploy/render.js'),
      import('../../ui/colors.js'),
    ])
    const ca = this.flags.ca ? await readCa(this.flags.ca) : undefined
    const info = await nodeInfo(this.flags.node, {expected: this.flags.address, ca, connectTimeoutMs: this.flags['connect-timeout'] * 1000})
    if (!this.jsonEnabled()) process.stdout.write(renderNodeInfo(info, out))
    return info
  }
}
