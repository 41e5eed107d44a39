import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'

export default class KeysGenerate extends BaseCommand<typeof KeysGenerate> {
  static override summary = "Create this machine's session key (secp256k1) and print its address"
  static override description =
    'The key is a PKCS#8 PEM file, mode 0600, in $R1_CONFIG_DIR, else $XDG_CONFIG_HOME/r1, else ~/.config/r1 (key.pem). Nodes allow commands from its address: `r1 node allow <address>`.'
  static override examples = ['<%= config.bin %> keys generate', '<%= config.bin %> keys generate --force --json']

  static override flags = {
    force: Flags.boolean({description: 'Replace an existing key (its address stops working on nodes that allowed it).'}),
  }

  public async run(): Promise<{address: string; path: string; replaced?: string}> {
    const {cliKeyPath, generateKeyFile} = await import('../../protocol/identity.js')
    const {identity, path, replaced} = await generateKeyFile(cliKeyPath(), {force: this.flags.force})
    if (!this.jsonEnabled()) {
      process.stdout.write(identity.address + '\n')
      this.note(`Key written to ${path}${replaced ? ` (replaced ${replaced})` : ''}. Allow it on a node with: r1 node allow ${identity.address}`)
    }
    return {address: identity.address, path, ...(replaced ? {replaced} : {})}
  }
}
