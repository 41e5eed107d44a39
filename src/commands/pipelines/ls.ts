import {BaseCommand} from '../../base-command.js'
import {targetFlags} from '../deploy.js'

export default class PipelinesLs extends BaseCommand<typeof PipelinesLs> {
  static override summary = 'List the pipelines on nodes, with their instances and statuses'
  static override examples = ['<%= config.bin %> pipelines ls --all', '<%= config.bin %> pipelines ls --target edge-a --json']

  static override flags = {...targetFlags}

  public async run() {
    const [{manage, nodeStatus}, {failureOf}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/fanout.js')])
    const result = await manage(this.flags, this.signal, async (link) => (await nodeStatus(link)).pipelines)
    if (!this.jsonEnabled()) {
      const [{out, err}, {table, paintStatus}] = await Promise.all([import('../../ui/colors.js'), import('../../deploy/render.js')])
      const rows = result.targets.flatMap((t) =>
        t.result
          ? t.result.map((p) => [t.target, p.name, p.type, String(p.instances.length), p.instances.map((i) => `${i.instanceId}:${i.status}`).join(' ')])
          : [[t.target, '-', '-', '-', `${t.status}: ${t.error ?? ''}`]],
      )
      const lines = rows.length > 0 ? table(['TARGET', 'PIPELINE', 'TYPE', 'INSTANCES', 'STATUS'], rows, out, (_r, c, text) => (c === 4 ? text.replace(/:(\w+)/g, (_m, s: string) => ':' + paintStatus(s, s, out)) : text)) : []
      process.stdout.write((lines.length > 1 ? lines : ['No pipelines.']).join('\n') + '\n')
      const failure = failureOf('Listing pipelines', result.targets)
      if (failure) process.stderr.write(`${err.red('✖')} ${failure.message}\n${err.dim('→ ' + failure.hint)}\n`)
    }
    process.exitCode = result.exitCode
    return result
  }
}
