import {Args} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class CStoreGet extends BaseCommand<typeof CStoreGet> {
  static override summary = "Read a key from nodes' CStore"
  static override description = 'Prints the JSON value (with one target, the value alone). A key that is not set fails that target (exit 1, KEY_NOT_FOUND).'
  static override examples = ['<%= config.bin %> cstore get app:mode --target edge-a', '<%= config.bin %> cstore get app:mode --all --json']

  static override args = {key: Args.string({description: 'The key', required: true, ignoreStdin: true})}
  static override flags = {...fleetFlags}

  public async run() {
    const [{manage}, {cstoreGet}, {renderValueResults}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js'), import('../../deploy/render.js')])
    const result = await manage(this.flags, this.signal, (link) => cstoreGet(link, this.args.key), {readOnly: true})
    return this.finishFleet(`Reading ${this.args.key}`, result, (out) => renderValueResults(result.targets, (r) => JSON.stringify(r.value), out, (r) => JSON.stringify(r.value)))
  }
}
