import {Args, Flags} from '@oclif/core'
import {BaseCommand, targetFlags} from '../base-command.js'
import type {TargetStatus} from '../deploy/fanout.js'
import type {DeployResult} from '../deploy/run.js'
import type {ConfigOverride} from '../manifest/environments.js'

/** `r1 deploy --json`: the per-target results and, with --env, the environment and the values it sets. */
export type DeployOutput = DeployResult & {environment?: {name: string; overrides: ConfigOverride[]}}

/** Target flags plus the fan-out and confirmation limits: deploy and the managing commands. */
export const fleetFlags = {
  ...targetFlags,
  'max-concurrent': Flags.integer({description: 'Targets handled at once', default: 8, min: 1}),
  'wait-timeout': Flags.integer({description: 'Seconds to wait for the node to confirm', default: 60, min: 1}),
}

export default class Deploy extends BaseCommand<typeof Deploy> {
  static override summary = 'Bundle, upload and apply pipelines on nodes, waiting for their confirmations'
  static override description =
    'Per target: connect and verify the node address, upload only the bundles it lacks, send UPDATE_CONFIG (or only the changed instances), then wait for PIPELINE_OK and PLUGIN_CONFIG_OK of every new or changed instance. Unchanged instances keep running. Exit 0 when every target succeeded, 6 when some failed, 4/5/7 when all were rejected / timed out / unreachable.'

  static override examples = [
    '<%= config.bin %> deploy --target edge-a',
    '<%= config.bin %> deploy temps --all --exclude edge-c --atomic',
    '<%= config.bin %> deploy --node wss://10.0.0.5:7443 --address 0xai_A2pP… --dry-run',
    '<%= config.bin %> deploy --all --json',
    '<%= config.bin %> deploy --target edge-a -m "raise the threshold"',
  ]

  static override strict = false
  static override args = {pipeline: Args.string({description: 'Pipelines to deploy, by NAME (default: every pipeline of the project)'})}
  static override flags = {
    ...fleetFlags,
    'dry-run': Flags.boolean({description: "Show each target's plan against its current state; change nothing"}),
    atomic: Flags.boolean({description: 'Apply only if every target answers first (connects and reads its state); if one fails later, put back the targets that already took the new version'}),
    message: Flags.string({char: 'm', description: 'Why: kept by the nodes with the version this deploy makes, with your address and the time (`r1 pipelines history`)'}),
  }

  public async run(): Promise<DeployOutput> {
    const {argv} = await this.parse(Deploy)
    const pipelines = argv.map(String)
    const [{openProject, buildProject, selectTargets}, {resolveTargets}, {connector}, {deploy}, {targetProgress}, {readSecrets}] = await Promise.all([
      import('../deploy/project.js'),
      import('../deploy/targets.js'),
      import('../deploy/link.js'),
      import('../deploy/run.js'),
      import('../deploy/progress.js'),
      import('../secrets/store.js'),
    ])
    const project = await openProject(this.flags.dir)
    const targets = this.flags.broker === undefined ? resolveTargets(project.targets, this.flags, project.environments) : await selectTargets(project.dir, this.flags, {connectTimeoutMs: this.flags['connect-timeout'] * 1000, signal: this.signal})
    const secrets = await readSecrets(project.dir)
    // Targets connect and read their state while esbuild bundles.
    const built = buildProject(project, pipelines, this.flags.env)
    const connect = await connector({connectTimeoutMs: this.flags['connect-timeout'] * 1000, caFile: this.flags.ca})
    const json = this.jsonEnabled()
    const progress = targetProgress(targets, {json})
    const result = await deploy({
      targets,
      project: built,
      connect,
      maxConcurrent: this.flags['max-concurrent'],
      waitTimeoutMs: this.flags['wait-timeout'] * 1000,
      dryRun: this.flags['dry-run'],
      atomic: this.flags.atomic,
      message: this.flags.message,
      secrets,
      signal: this.signal,
      onStep: (target, step, detail) => (step === 'done' ? !this.flags.atomic && progress.finish(target, detail as TargetStatus) : progress.step(target, step, detail)),
    })
    await progress.close(result.targets)
    const environment = this.flags.env === undefined ? undefined : {name: this.flags.env, overrides: (await built.catch(() => undefined))?.overrides ?? []}
    const output: DeployOutput = environment ? {...result, environment} : result
    if (!json) await this.render(output)
    process.exitCode = result.exitCode
    return output
  }

  private async render(result: DeployOutput): Promise<void> {
    const [{out, err}, {renderDeploySummary, renderPlanOf, renderOverrides, failureText}, {failureOf}] = await Promise.all([import('../ui/colors.js'), import('../deploy/render.js'), import('../deploy/fanout.js')])
    const lines: string[] = result.environment ? renderOverrides(result.environment, out) : []
    if (this.flags['dry-run']) {
      for (const t of result.targets) {
        lines.push(...renderPlanOf(t, out))
      }
    } else {
      lines.push(...renderDeploySummary(result.targets, out))
    }
    process.stdout.write(lines.join('\n') + '\n')
    const failure = failureOf(this.flags['dry-run'] ? 'Planning' : 'Deploy', result.targets)
    if (failure) process.stderr.write(failureText(failure, err))
  }
}
