import {Args} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class CStoreHgetall extends BaseCommand<typeof CStoreHgetall> {
  static override summary = "Read every field of a hash from nodes' CStore"
  static override description = 'Prints the fields as one JSON object (with one target, the object alone); a hash with no field is {}.'
  static override examples = ['<%= config.bin %> cstore hgetall sensors --target edge-a', '<%= config.bin %> cstore hgetall sensors --all --json']

  static override args = {hkey: Args.string({description: 'The hash key', required: true, ignoreStdin: true})}
  static override flags = {...fleetFlags}

  public async run() {
    const [{manage}, {cstoreHgetall}, {renderValueResults}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js'), import('../../deploy/render.js')])
    const result = await manage(this.flags, this.signal, (link) => cstoreHgetall(link, this.args.hkey), {readOnly: true})
    return this.finishFleet(`Reading ${this.args.hkey}`, result, (out) => renderValueResults(result.targets, (r) => JSON.stringify(r.fields), out, (r) => JSON.stringify(r.fields, null, 2)))
  }
}
