import {Args, Flags} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../base-command.js'
import type {DeployResult} from '../deploy/run.js'
import type {TargetStatus} from '../fleet/result.js'

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

  public async run(): Promise<DeployResult> {
    const {argv} = await this.parse(Deploy)
    const pipelines = argv.map(String)
    const [{openProject, buildProject}, {resolveTargets}, {connector}, {deploy}, {targetProgress}, {readSecrets}] = await Promise.all([
      import('../deploy/project.js'),
      import('../deploy/targets.js'),
      import('../deploy/link.js'),
      import('../deploy/run.js'),
      import('../deploy/progress.js'),
      import('../secrets/store.js'),
    ])
    const project = await openProject(this.flags.dir)
    const targets = resolveTargets(project.targets, this.flags)
    const secrets = await readSecrets(project.dir)
    // Targets connect and read their state while esbuild bundles.
    const built = buildProject(project, pipelines)
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
    const {renderDeploySummary, renderPlanOf} = await import('../deploy/render.js')
    const dryRun = this.flags['dry-run']
    return this.finishFleet(dryRun ? 'Planning' : 'Deploy', result, (out) => (dryRun ? result.targets.flatMap((t) => renderPlanOf(t, out)) : renderDeploySummary(result.targets, out)))
  }
}
