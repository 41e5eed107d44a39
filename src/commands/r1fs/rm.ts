import {Args} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class R1fsRm extends BaseCommand<typeof R1fsRm> {
  static override summary = "Delete a file from nodes' R1FS by its CID"
  static override description = 'A CID the node does not hold fails that target (exit 1, R1FS_NOT_FOUND).'
  static override examples = ['<%= config.bin %> r1fs rm QmX… --target edge-a', '<%= config.bin %> r1fs rm QmX… --all --json']

  static override args = {cid: Args.string({description: 'The CID', required: true, ignoreStdin: true})}
  static override flags = {...fleetFlags}

  public async run() {
    const [{manage}, {r1fsRm}, {renderValueResults}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js'), import('../../deploy/render.js')])
    const result = await manage(this.flags, this.signal, (link) => r1fsRm(link, this.args.cid))
    return this.finishFleet(`Deleting ${this.args.cid}`, result, (out) => renderValueResults(result.targets, () => 'deleted', out))
  }
}
