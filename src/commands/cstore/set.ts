import {Args, Flags} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class CStoreSet extends BaseCommand<typeof CStoreSet> {
  static override summary = "Set a key in nodes' CStore (a JSON value; null deletes it)"
  static override description = 'VALUE is JSON: 42, true, null, \'"text"\', \'{"a": 1}\'. Text that is not JSON is refused (exit 2) unless --string stores it as it is. `-` reads the value from stdin.'
  static override examples = [
    '<%= config.bin %> cstore set app:mode \'"fast"\' --target edge-a',
    '<%= config.bin %> cstore set app:mode fast --string --all',
    '<%= config.bin %> cstore set app:limits - --target edge-a < limits.json',
    '<%= config.bin %> cstore set app:mode null --target edge-a   # deletes it',
  ]

  static override args = {
    key: Args.string({description: 'The key', required: true, ignoreStdin: true}),
    value: Args.string({description: 'JSON value (with --string: text), or - for stdin', required: true, ignoreStdin: true}),
  }

  static override flags = {...fleetFlags, string: Flags.boolean({description: 'Store VALUE as text, not JSON'})}

  public async run() {
    const [{manage}, {cstoreSet, parseStoreValue, readValueArg}, {renderValueResults}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js'), import('../../deploy/render.js')])
    const value = parseStoreValue(await readValueArg(this.args.value), this.flags.string)
    const result = await manage(this.flags, this.signal, (link) => cstoreSet(link, this.args.key, value))
    return this.finishFleet(`Setting ${this.args.key}`, result, (out) => renderValueResults(result.targets, (r) => (r.deleted ? 'deleted' : 'stored'), out))
  }
}
