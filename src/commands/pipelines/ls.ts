import {BaseCommand, fleetFlags} from '../../base-command.js'

/** `v3 (kept 1-3)`: the running version and what `rollback --to` can pick. */
function versions(p: {version?: number; kept?: number[]}): string {
  const kept = p.kept && p.kept.length > 0 ? ` (kept ${p.kept.length > 2 ? `${p.kept[0]}-${p.kept.at(-1)}` : p.kept.join(',')})` : ''
  return p.version === undefined ? '-' : `v${p.version}${kept}`
}

export default class PipelinesLs extends BaseCommand<typeof PipelinesLs> {
  static override summary = 'List the pipelines on nodes, with their instances and statuses'
  static override examples = ['<%= config.bin %> pipelines ls --all', '<%= config.bin %> pipelines ls --target edge-a --json']

  static override flags = {...fleetFlags}

  public async run() {
    const [{manage, nodeStatus}, {table, paintStatus}] = await Promise.all([import('../../deploy/manage.js'), import('../../deploy/render.js')])
    const result = await manage(this.flags, this.signal, async (link) => (await nodeStatus(link)).pipelines, {readOnly: true})
    return this.finishFleet('Listing pipelines', result, (out) => {
      const rows = result.targets.flatMap((t) =>
        t.result
          ? t.result.map((p) => [t.target, p.name, p.type, versions(p), String(p.instances.length), p.stopped ? 'stopped' : p.instances.map((i) => `${i.instanceId}:${i.status}`).join(' ')])
          : [[t.target, '-', '-', '-', '-', `${t.status}: ${t.error ?? ''}`]],
      )
      const lines = rows.length > 0 ? table(['TARGET', 'PIPELINE', 'TYPE', 'VERSION', 'INSTANCES', 'STATUS'], rows, out, (_r, c, text) => (c === 5 ? text.replace(/:(\w+)/g, (_m, s: string) => ':' + paintStatus(s, s, out)) : text)) : []
      return lines.length > 1 ? lines : ['No pipelines.']
    })
  }
}
