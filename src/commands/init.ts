import {Args, Flags} from '@oclif/core'
import {resolve} from 'node:path'
import {BaseCommand} from '../base-command.js'
import {PACKAGE_MANAGERS} from '../scaffold/setup.js'
import type {TemplatesResult} from './templates.js'

export interface InitResult {
  /** Absolute path of the new project. */
  dir: string
  template: string
  name: string
  /** The first plugin's signature; null for a template without a plugin of its own. */
  signature: string | null
  /** Written files, relative to `dir`. */
  files: string[]
  installed: boolean
  git: boolean
}

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Create a plugin project from a template'
  static override description =
    'Asks on a terminal (template, name, signature, package manager, install, git); every question has a flag, and --yes takes the defaults. ' +
    'Without a terminal or with --json nothing is asked and a missing answer fails naming its flag. ' +
    'A template is a built-in id (`r1 templates`), a local folder, or a git URL with #branch|tag|sha and :subdir (or --path). ' +
    'Files are written to a staging folder and moved into place, so a failure leaves nothing half-written.'

  static override examples = [
    '<%= config.bin %> init my-sensor --template ts-plugin --yes',
    '<%= config.bin %> init',
    '<%= config.bin %> init . --template js-plugin --name sensor-watch --signature TEMP_MONITOR --no-install --no-git',
    '<%= config.bin %> init edge-app --template https://example.com/templates.git#v1:process-app --yes',
    '<%= config.bin %> init --list',
  ]

  static override args = {
    dir: Args.string({description: 'Folder of the new project (default: ./<name>)'}),
  }

  static override flags = {
    template: Flags.string({char: 't', description: 'Built-in template id, a local folder, or a git URL (#ref, :subdir)'}),
    path: Flags.string({description: 'Subdirectory of the template repository or folder'}),
    name: Flags.string({char: 'n', description: 'Project name (kebab-case)'}),
    signature: Flags.string({char: 's', description: "First plugin's signature (UPPER_SNAKE)"}),
    'package-manager': Flags.option({options: PACKAGE_MANAGERS, description: 'Package manager for the install'})(),
    install: Flags.boolean({allowNo: true, description: 'Install dependencies (default with --yes)'}),
    git: Flags.boolean({allowNo: true, description: 'Initialize a git repository with a first commit (default with --yes)'}),
    yes: Flags.boolean({char: 'y', description: 'Take the default for every unanswered question'}),
    force: Flags.boolean({char: 'f', description: 'Write into a non-empty folder, replacing files with the same names'}),
    list: Flags.boolean({description: 'List the built-in templates and exit (as `r1 templates`)'}),
  }

  static override interruptible = true

  public async run(): Promise<InitResult | TemplatesResult> {
    const scaffold = await import('../scaffold/index.js')
    const {tasks} = await import('../ui/tasks.js')
    const {canPrompt} = await import('../ui/prompts.js')
    const {err} = await import('../ui/colors.js')
    const {flags, args, signal} = this
    const json = this.jsonEnabled()
    if (flags.list) {
      const templates = await scaffold.listBuiltinTemplates()
      if (!json) this.log(scaffold.formatTemplateList(templates))
      return {templates: templates.map(({id, description}) => ({id, description}))}
    }

    const given = {template: flags.template, name: flags.name, signature: flags.signature, packageManager: flags['package-manager'], install: flags.install, git: flags.git, yes: flags.yes}
    const asker = canPrompt(json) ? scaffold.terminalAsker(signal) : undefined
    scaffold.checkNameFlags(given)
    if (args.dir) await scaffold.checkTarget(resolve(args.dir), flags.force)
    const ref = scaffold.parseTemplateRef(await scaffold.chooseTemplate(given, asker, undefined, args.dir), flags.path)

    // Only a clone takes long enough to deserve progress; built-in and local templates are read directly.
    const fetched: {template?: Awaited<ReturnType<typeof scaffold.fetchTemplate>>} = {}
    const fetch = async () => {
      fetched.template = await scaffold.fetchTemplate(ref, {signal})
      this.onCleanup(() => fetched.template!.cleanup())
    }
    if (ref.kind === 'git') await tasks([{title: `Fetch template ${ref.url}${ref.ref ? `#${ref.ref}` : ''}`, task: fetch}], {json}).run()
    else await fetch()
    const template = fetched.template!
    await scaffold.checkProjectDir(template.dir, `Template ${template.label}`, {color: err.level > 0})

    const answers = await scaffold.resolveAnswers(given, template.meta, asker, args.dir, flags.force)
    for (const warning of answers.warnings) this.warn(warning)
    const dir = resolve(args.dir ?? answers.name)
    if (!args.dir) await scaffold.checkTarget(dir, flags.force)
    const values = {name: answers.name, signature: answers.signature, schemaPath: scaffold.GENERATED_SCHEMA_PATH, r1Dependency: scaffold.r1DependencySpec(undefined, dir)}

    let installError: Error | undefined
    const result: InitResult = {dir, template: template.label, name: answers.name, signature: answers.signature ?? null, files: [], installed: false, git: false}
    await tasks([
      {title: `Write ${answers.name} to ${dir}`, task: async (_ctx, task) => {
        result.files = await scaffold.renderTemplate({source: template.dir, meta: template.meta, values, target: dir, force: flags.force, signal,
          check: (staged) => scaffold.checkProjectDir(staged, 'The generated project', {color: err.level > 0})})
        task.title = `Wrote ${result.files.length} files to ${dir}`
      }},
      {title: `Install dependencies with ${answers.packageManager}`, enabled: () => answers.install, task: async (_ctx, task) => {
        try {
          await scaffold.installDependencies(dir, answers.packageManager, signal)
          result.installed = true
        } catch (error) {
          // reported at the end (exit 1); git init still runs, it is never skipped silently
          if (signal.aborted) throw error
          installError = error as Error
          task.skip(`Install failed: ${installError.message.split('\n')[0]}`)
        }
      }},
      // After the install, so the first commit holds the lock file.
      {title: 'Initialize a git repository', enabled: () => answers.git, task: async (_ctx, task) => {
        const outcome = await scaffold.initGitRepository(dir)
        result.git = outcome !== 'skipped-inside-repository'
        if (!result.git) task.skip('Inside an existing git repository: no new one')
      }},
    ], {json}).run()

    if (!json) this.log(scaffold.nextSteps(result, answers.packageManager, process.cwd()))
    if (installError) throw installError
    return result
  }
}
