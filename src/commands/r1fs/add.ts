import {Args, Flags} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'

/** Where an R1FS file's secret comes from: never a flag's value (shell history, ps). */
export const secretFlags = {
  'secret-file': Flags.string({description: 'Encrypt/decrypt with the secret held in this file (one trailing newline dropped)'}),
  'secret-env': Flags.string({description: 'Encrypt/decrypt with the secret in this environment variable'}),
  'secret-stdin': Flags.boolean({description: 'Encrypt/decrypt with the secret piped on stdin (a hidden prompt on a terminal)'}),
}

export default class R1fsAdd extends BaseCommand<typeof R1fsAdd> {
  static override summary = "Add a file to nodes' R1FS and print its CID"
  static override description =
    "Any size up to the node's quota: the file goes in chunks (each within the frame limit), is checked against its sha256 on the node and only then stored. With a secret (from a file, an environment variable or stdin, never the command line), the node stores it encrypted (AES-256-GCM keyed by the secret) and the secret travels encrypted to the node's key."
  static override examples = [
    '<%= config.bin %> r1fs add model.bin --target edge-a',
    '<%= config.bin %> r1fs add report.pdf --secret-file ~/.r1fs-secret --all --json',
    'printf %s "$SECRET" | <%= config.bin %> r1fs add notes.txt --secret-stdin --target edge-a',
  ]

  static override args = {file: Args.string({description: 'The file to add', required: true, ignoreStdin: true})}
  static override flags = {...fleetFlags, ...secretFlags, filename: Flags.string({description: 'The name to store it under (default: the file name)'})}

  public async run() {
    const [{manage}, {localFile, r1fsAdd}, {readSecretFrom}, {renderValueResults}, {DIRECT_CONCURRENCY}] = await Promise.all([
      import('../../deploy/manage.js'),
      import('../../deploy/services.js'),
      import('../../secrets/input.js'),
      import('../../deploy/render.js'),
      import('../../fleet/engine.js'),
    ])
    const secret = await readSecretFrom(this.flags, {json: this.jsonEnabled(), signal: this.signal})
    const file = await localFile(this.args.file, this.flags.filename)
    // each target gets the whole file: as many at once as direct targets, even through a broker (they share its connection)
    const result = await manage({...this.flags, 'max-concurrent': this.flags['max-concurrent'] ?? DIRECT_CONCURRENCY}, this.signal, (link) => r1fsAdd(link, file, secret))
    return this.finishFleet(`Adding ${file.filename}`, result, (out) => renderValueResults(result.targets, (r) => r.cid, out, (r) => r.cid))
  }
}
