import {Args} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class CStoreHkeys extends BaseCommand<typeof CStoreHkeys> {
  static override summary = "List the field names of a hash in nodes' CStore"
  static override description = 'Prints the names as one JSON array (with one target, the array alone), without their values; a hash with no field is [].'
  static override examples = ['<%= config.bin %> cstore hkeys sensors --target edge-a', '<%= config.bin %> cstore hkeys sensors --all --json']

  static override args = {hkey: Args.string({description: 'The hash key', required: true, ignoreStdin: true})}
  static override flags = {...fleetFlags}

  public async run() {
    const [{manage}, {cstoreHkeys}, {renderValueResults}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js'), import('../../deploy/render.js')])
    const result = await manage(this.flags, this.signal, (link) => cstoreHkeys(link, this.args.hkey), {readOnly: true})
    return this.finishFleet(`Listing the fields of ${this.args.hkey}`, result, (out) => renderValueResults(result.targets, (r) => JSON.stringify(r.fields), out, (r) => JSON.stringify(r.fields, null, 2)))
  }
}
