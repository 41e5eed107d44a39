import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {fleetFlags} from '../deploy.js'

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
    const [{manage}, {cstoreSet, parseStoreValue, readValueArg}, {printTargetReport}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js'), import('../../ui/target-report.js')])
    const value = parseStoreValue(await readValueArg(this.args.value), this.flags.string)
    const result = await manage(this.flags, this.signal, (link) => cstoreSet(link, this.args.key, value))
    if (!this.jsonEnabled()) await printTargetReport(result.targets, `Setting ${this.args.key}`, (r) => (r.deleted ? 'deleted' : 'stored'))
    process.exitCode = result.exitCode
    return result
  }
}
