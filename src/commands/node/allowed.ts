import {BaseCommand, nodeDataDirFlag} from '../../base-command.js'
import type {AllowEntry} from '../../runtime/server-allowlist.js'

export default class NodeAllowed extends BaseCommand<typeof NodeAllowed> {
  static override summary = "List the addresses a node accepts commands from"
  static override examples = ['<%= config.bin %> node allowed --data-dir ./node-a', '<%= config.bin %> node allowed --json']

  static override flags = {
    ...nodeDataDirFlag,
  }

  public async run(): Promise<{file: string; allowed: AllowEntry[]}> {
    const [{defaultDataDir}, {readAllowList, allowListPath}] = await Promise.all([import('../../runtime/data-dir.js'), import('../../runtime/server-allowlist.js')])
    const dataDir = this.flags['data-dir'] ?? defaultDataDir()
    const allowed = await readAllowList(dataDir)
    const file = allowListPath(dataDir)
    if (!this.jsonEnabled()) {
      if (allowed.length === 0) this.note(`No address is allowed (${file}). Add one with: r1 node allow <address> --data-dir ${dataDir}`)
      for (const entry of allowed) process.stdout.write(`${entry.address}${entry.alias ? `  ${entry.alias}` : ''}\n`)
    }
    return {file, allowed}
  }
}
