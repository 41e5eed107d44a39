import {Args, Flags} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../../base-command.js'
import {ExitCode, R1Error} from '../../errors.js'
import {secretFlags} from './add.js'

export default class R1fsGet extends BaseCommand<typeof R1fsGet> {
  static override summary = "Download a file from a node's R1FS by its CID"
  static override description =
    'Written to -o <file> (`-o -`: stdout), by default to its stored name in the current folder; the file appears only once complete, and an existing one is kept unless --force. An encrypted file needs its secret (from a file, an environment variable or stdin). An unknown CID or a wrong secret fails with R1FS_NOT_FOUND (exit 1). One target at a time.'
  static override examples = ['<%= config.bin %> r1fs get QmX… -o model.bin --target edge-a', '<%= config.bin %> r1fs get QmX… --secret-env R1FS_SECRET -o - --target edge-a | sha256sum']

  static override args = {cid: Args.string({description: 'The CID (`r1 r1fs ls` lists them)', required: true, ignoreStdin: true})}
  static override flags = {
    ...fleetFlags,
    ...secretFlags,
    output: Flags.string({char: 'o', description: 'Write it here (- for stdout)'}),
    force: Flags.boolean({description: 'Replace an existing file'}),
  }

  public async run() {
    const [{manage}, {r1fsGet}, {readSecretFrom}, {renderValueResults}] = await Promise.all([
      import('../../deploy/manage.js'),
      import('../../deploy/services.js'),
      import('../../secrets/input.js'),
      import('../../deploy/render.js'),
    ])
    const toStdout = this.flags.output === '-'
    if (toStdout && this.jsonEnabled()) throw new R1Error('-o - writes the file to stdout, where --json prints its document.', ExitCode.USAGE, {code: 'FLAG_CONFLICT', hint: 'Write it to a file (-o <file>) with --json.'})
    const secret = await readSecretFrom(this.flags, {json: this.jsonEnabled(), signal: this.signal})
    const result = await manage(this.flags, this.signal, (link) => r1fsGet(link, this.args.cid, secret, {path: this.flags.output, force: this.flags.force}), {oneTarget: 'r1 r1fs get'})
    // with -o -, stdout holds the file's bytes only: a failure goes to stderr
    return this.finishFleet(`Getting ${this.args.cid}`, result, (out) => (toStdout ? '' : renderValueResults(result.targets, (r) => `${r.size} bytes → ${r.path}`, out)))
  }
}
