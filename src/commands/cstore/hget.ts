import {Args} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class CStoreHget extends BaseCommand<typeof CStoreHget> {
  static override summary = "Read one field of a hash from nodes' CStore"
  static override description = 'Prints the JSON value (with one target, the value alone). A field that is not set fails that target (exit 1, KEY_NOT_FOUND).'
  static override examples = ['<%= config.bin %> cstore hget sensors temp-1 --target edge-a', '<%= config.bin %> cstore hget sensors temp-1 --all --json']

  static override args = {
    hkey: Args.string({description: 'The hash key', required: true, ignoreStdin: true}),
    field: Args.string({description: 'The field', required: true, ignoreStdin: true}),
  }

  static override flags = {...fleetFlags}

  public async run() {
    const [{manage}, {cstoreHget}, {renderValueResults}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js'), import('../../deploy/render.js')])
    const result = await manage(this.flags, this.signal, (link) => cstoreHget(link, this.args.hkey, this.args.field), {readOnly: true})
    return this.finishFleet(`Reading ${this.args.hkey} ${this.args.field}`, result, (out) => renderValueResults(result.targets, (r) => JSON.stringify(r.value), out, (r) => JSON.stringify(r.value)))
  }
}
