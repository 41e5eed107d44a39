import {BaseCommand} from '../../base-command.js'

export default class KeysShow extends BaseCommand<typeof KeysShow> {
  static override summary = "Print this machine's session address (0xai_…)"
  static override examples = ['<%= config.bin %> keys show', '<%= config.bin %> keys show --json']

  public async run(): Promise<{address: string; path: string}> {
    const {cliKeyPath, requireIdentity} = await import('../../protocol/identity.js')
    const path = cliKeyPath()
    const identity = await requireIdentity(path)
    if (!this.jsonEnabled()) {
      process.stdout.write(identity.address + '\n')
      this.note(`Key: ${path}`)
    }
    return {address: identity.address, path}
  }
}
