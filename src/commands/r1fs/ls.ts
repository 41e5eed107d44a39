import {BaseCommand, fleetFlags} from '../../base-command.js'

export default class R1fsLs extends BaseCommand<typeof R1fsLs> {
  static override summary = "List the files in nodes' R1FS"
  static override examples = ['<%= config.bin %> r1fs ls --target edge-a', '<%= config.bin %> r1fs ls --all --json']

  static override flags = {...fleetFlags}

  public async run() {
    const [{manage}, {r1fsList}, {table}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js'), import('../../deploy/render.js')])
    const result = await manage(this.flags, this.signal, (link) => r1fsList(link), {readOnly: true})
    return this.finishFleet('Listing files', result, (out) => {
      const rows = result.targets.flatMap((t) =>
        t.result ? t.result.files.map((f) => [t.target, f.cid, f.filename, String(f.size), f.encrypted ? 'yes' : 'no', f.added]) : [[t.target, '-', '-', '-', '-', `${t.status}: ${t.error ?? ''}`]],
      )
      return rows.length > 0 ? table(['TARGET', 'CID', 'FILENAME', 'SIZE', 'ENCRYPTED', 'ADDED'], rows, out) : ['No files.']
    })
  }
}
