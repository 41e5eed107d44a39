import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'

export interface TypesResult {
  /** Absolute path of the written declarations (`-` for stdout). */
  file: string
  /** Signatures typed, each as `<PascalCase>Config`. */
  signatures: string[]
  /** The declarations themselves, with `--out -`. */
  types?: string
}

export default class Types extends BaseCommand<typeof Types> {
  static override summary = "Write TypeScript types for each plugin's instance config from config.yaml"
  static override description =
    'One interface per signature (TEMP_MONITOR → TempMonitorConfig) with UPPERCASE keys, base keys included, plus R1PluginConfigs by signature. Use it as definePlugin<TempMonitorConfig>(...).'

  static override examples = ['<%= config.bin %> types', '<%= config.bin %> types path/to/project --out types/config.d.ts', '<%= config.bin %> types --out -']

  static override args = {
    path: Args.string({description: 'Project folder or its config.yaml (or --dir)'}),
  }

  static override flags = {
    dir: Flags.string({char: 'd', description: 'Project folder (same as the path argument)'}),
    out: Flags.string({char: 'o', description: 'Output file, relative to the project folder ("-" prints to stdout)', default: 'src/r1-config.d.ts'}),
  }

  public async run(): Promise<TypesResult> {
    const [{writeConfigTypes, configTypes}, {projectPath}] = await Promise.all([import('../manifest/types-gen.js'), import('../manifest/validate.js')])
    const path = projectPath(this.args.path, this.flags.dir)
    if (this.flags.out === '-') {
      // under --json the declarations travel inside the one JSON document
      const {signatures, types} = await configTypes(path)
      if (!this.jsonEnabled()) process.stdout.write(types)
      return {file: '-', signatures, types}
    }
    const {file, signatures} = await writeConfigTypes(path, this.flags.out)
    if (!this.jsonEnabled()) process.stdout.write(`✔ Wrote ${file} (${signatures.length} signature${signatures.length === 1 ? '' : 's'}: ${signatures.join(', ')})\n`)
    return {file, signatures}
  }
}
