import {BaseCommand} from '../../base-command.js'
import {fleetFlags} from '../deploy.js'

export default class R1fsLs extends BaseCommand<typeof R1fsLs> {
  static override summary = "List the files in nodes' R1FS"
  static override examples = ['<%= config.bin %> r1fs ls --target edge-a', '<%= config.bin %> r1fs ls --all --json']

  static override flags = {...fleetFlags}

  public async run() {
    const [{manage}, {r1fsList}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/services.js')])
    const result = await manage(this.flags, this.signal, (link) => r1fsList(link), {readOnly: true})
    if (!this.jsonEnabled()) {
      const [{out, err}, {table, failureText}, {failureOf}] = await Promise.all([import('../../ui/colors.js'), import('../../deploy/render.js'), import('../../deploy/fanout.js')])
      const rows = result.targets.flatMap((t) =>
        t.result ? t.result.files.map((f) => [t.target, f.cid, f.filename, String(f.size), f.encrypted ? 'yes' : 'no', f.added]) : [[t.target, '-', '-', '-', '-', `${t.status}: ${t.error ?? ''}`]],
      )
      process.stdout.write((rows.length > 0 ? table(['TARGET', 'CID', 'FILENAME', 'SIZE', 'ENCRYPTED', 'ADDED'], rows, out) : ['No files.']).join('\n') + '\n')
      const failure = failureOf('Listing files', result.targets)
      if (failure) process.stderr.write(failureText(failure, err))
    }
    process.exitCode = result.exitCode
    return result
  }
}
