import {BaseCommand} from '../base-command.js'

export interface TemplatesResult {
  templates: Array<{id: string; description: string}>
}

export default class Templates extends BaseCommand<typeof Templates> {
  static override summary = 'List the built-in project templates'
  static override description = 'Each can be passed to `r1 init --template <id>`; a local folder or a git URL works there too.'
  static override examples = ['<%= config.bin %> templates', '<%= config.bin %> templates --json']

  public async run(): Promise<TemplatesResult> {
    const {formatTemplateList, listBuiltinTemplates} = await import('../scaffold/index.js')
    const templates = await listBuiltinTemplates()
    if (!this.jsonEnabled()) this.log(formatTemplateList(templates))
    return {templates: templates.map(({id, description}) => ({id, description}))}
  }
}
