import {Args} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {fleetFlags} from '../deploy.js'

export default class CStoreHgetall extends BaseCommand<typeof CStoreHgetall> {
  static override summary = "Read every field of a hash from nodes' CStore"
  static override description = 'Prints the fields as one JSON object (with one target, the object alone); a hash with no field is {}.'
  static override examples = ['<%= config.bin %> cstore hgetall sensors --target edge-a', '<%= config.bin %> cstore hgetall sensors --all --json']

  static override args = {hkey: Args.string({description: 'The hash key', required: true, ignoreStdin: true})}
  static override flags = {...fleetFlags}

  public async run() {
    const [{manage}, {cstoreHgetall}, {printTargetReport}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js'), import('../../ui/target-report.js')])
    const result = await manage(this.flags, this.signal, (link) => cstoreHgetall(link, this.args.hkey), {readOnly: true})
    if (!this.jsonEnabled()) await printTargetReport(result.targets, `Reading ${this.args.hkey}`, (r) => JSON.stringify(r.fields), (r) => JSON.stringify(r.fields, null, 2))
    process.exitCode = result.exitCode
    return result
  }
}
