import {Args, Flags} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class CStoreHset extends BaseCommand<typeof CStoreHset> {
  static override summary = "Set one field of a hash in nodes' CStore (a JSON value; null deletes the field)"
  static override description = 'VALUE is JSON, as for `r1 cstore set`: text that is not JSON is refused (exit 2) unless --string; `-` reads it from stdin.'
  static override examples = ['<%= config.bin %> cstore hset sensors temp-1 \'{"max": 30}\' --target edge-a', '<%= config.bin %> cstore hset sensors temp-1 null --all']

  static override args = {
    hkey: Args.string({description: 'The hash key', required: true, ignoreStdin: true}),
    field: Args.string({description: 'The field', required: true, ignoreStdin: true}),
    value: Args.string({description: 'JSON value (with --string: text), or - for stdin', required: true, ignoreStdin: true}),
  }

  static override flags = {...fleetFlags, string: Flags.boolean({description: 'Store VALUE as text, not JSON'})}

  public async run() {
    const [{manage}, {cstoreHset, parseStoreValue, readValueArg}, {renderValueResults}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js'), import('../../deploy/render.js')])
    const value = parseStoreValue(await readValueArg(this.args.value), this.flags.string)
    const result = await manage(this.flags, this.signal, (link) => cstoreHset(link, this.args.hkey, this.args.field, value))
    return this.finishFleet(`Setting ${this.args.hkey} ${this.args.field}`, result, (out) => renderValueResults(result.targets, (r) => (r.deleted ? 'deleted' : 'stored'), out))
  }
}
