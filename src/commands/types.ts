import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'

export interface TypesResult {
  /** Absolute path of the written declarations. */
  file: string
  /** Signatures typed, each as `<PascalCase>Config`. */
  signatures: string[]
}

export default class Types extends BaseCommand<typeof Types> {
  static override summary = "Write TypeScript types for each plugin's instance config from config.yaml"
  static override description =
    'One interface per signature (TEMP_MONITOR → TempMonitorConfig) with UPPERCASE keys, base keys included, plus R1PluginConfigs by signature. Use it as definePlugin<TempMonitorConfig>(...).'

  static override examples = ['<%= config.bin %> types', '<%= config.bin %> types path/to/project --out types/config.d.ts', '<%= config.bin %> types --out -']

  static override args = {
    path: Args.string({description: 'Project folder or its config.yaml', default: '.'}),
  }

  static override flags = {
    out: Flags.string({char: 'o', description: 'Output file, relative to the project folder ("-" prints to stdout)', default: 'src/r1-config.d.ts'}),
  }

  public async run(): Promise<TypesResult | undefined> {
    if (this.flags.out === '-') {
      const {loadManifest, generateConfigTypes} = await import('../manifest/index.js')
      const {manifest} = await loadManifest(this.args.path)
      process.stdout.write(generateConfigTypes(manifest))
      return undefined
    }
    const {writeConfigTypes} = await import('../manifest/types-gen.js')
    const {file, signatures} = await writeConfigTypes(this.args.path, this.flags.out)
    if (!this.jsonEnabled()) process.stdout.write(`✔ Wrote ${file} (${signatures.length} signature${signatures.length === 1 ? '' : 's'}: ${signatures.join(', ')})\n`)
    return {file, signatures}
  }
}
