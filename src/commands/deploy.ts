import {Args, Flags} from '@oclif/core'
import type {ChalkInstance} from 'chalk'
import {BaseCommand, fleetFlags} from '../base-command.js'
import type {DeployResult, DeployStep, TargetResult} from '../deploy/run.js'
import type {Target} from '../deploy/targets.js'
import type {RolloutOutput} from '../fleet/rollout-run.js'
import type {ConfigOverride} from '../manifest/environments.js'

/** `r1 deploy --json`: the per-target results (a rollout's with --waves/--canary) and, with --env, the environment and the values it sets. */
export type DeployOutput = (DeployResult | RolloutOutput) & {environment?: {name: string; overrides: ConfigOverride[]}}

export default class Deploy extends BaseCommand<typeof Deploy> {
  static override summary = 'Bundle, upload and apply pipelines on nodes, waiting for their confirmations'
  static override description =
    'Per target: connect and verify the node address, upload only the bundles it lacks, send UPDATE_CONFIG (or only the changed instances), then wait for PIPELINE_OK and PLUGIN_CONFIG_OK of every new or changed instance. Unchanged instances keep running. Exit 0 when every target succeeded, 6 when some failed, 4/5/7 when all were rejected / timed out / unreachable. With --waves or --canary: wave by wave, each watched for --soak; a failure in the first wave or beyond --max-failed stops the rollout and puts every updated target back (exit 8); recorded in .r1/rollouts (`r1 rollouts ls`).'

  static override examples = [
    '<%= config.bin %> deploy --target edge-a',
    '<%= config.bin %> deploy temps --all --exclude edge-c --atomic',
    '<%= config.bin %> deploy --node wss://10.0.0.5:7443 --address 0xai_A2pP… --dry-run',
    '<%= config.bin %> deploy --all --json',
    '<%= config.bin %> deploy --target edge-a -m "raise the threshold"',
    '<%= config.bin %> deploy --all --canary 1 --soak 2m',
    '<%= config.bin %> deploy --all --waves 1,10%,50%,100% --soak 60s --max-failed 5% --json',
  ]

  static override strict = false
  static override args = {pipeline: Args.string({description: 'Pipelines to deploy, by NAME (default: every pipeline of the project)'})}
  static override flags = {
    ...fleetFlags,
    'dry-run': Flags.boolean({description: "Show each target's plan against its current state (and, with waves, which targets go in which wave); change nothing"}),
    atomic: Flags.boolean({description: 'Apply only if every target answers first (connects and reads its state); if one fails later, put back the targets that already took the new version', exclusive: ['waves', 'canary']}),
    message: Flags.string({char: 'm', description: 'Why: kept by the nodes with the version this deploy makes, with your address and the time (`r1 pipelines history`)'}),
    waves: Flags.string({description: 'Roll out in waves, each step counted from the start (a count or a share of the targets), the last 100%: e.g. 1,10%,50%,100%', exclusive: ['canary'], helpGroup: 'ROLLOUT'}),
    canary: Flags.integer({description: 'Roll out to N targets first, then to the rest (--waves N,100%)', min: 1, helpGroup: 'ROLLOUT'}),
    soak: Flags.string({description: 'How long each wave is watched for health before the next starts (e.g. 60s, 2m, 0) [default: 60s]', helpGroup: 'ROLLOUT'}),
    'max-failed': Flags.string({description: 'Failed targets (a count, or a share like 5%) the rollout tolerates before it stops and puts every updated target back; any failure in the first wave stops it [default: 0]', helpGroup: 'ROLLOUT'}),
  }

  public async run(): Promise<DeployOutput> {
    const {argv} = await this.parse(Deploy)
    const pipelines = argv.map(String)
    const [{openProject, buildProject, selectTargets}, {resolveTargets}, {connector}, {deploy}, {targetProgress}, {readSecrets}, waves] = await Promise.all([
      import('../deploy/project.js'),
      import('../deploy/targets.js'),
      import('../deploy/link.js'),
      import('../deploy/run.js'),
      import('../deploy/progress.js'),
      import('../secrets/store.js'),
      import('../fleet/waves.js'),
    ])
    const f = this.flags
    const steps = f.waves === undefined ? (f.canary === undefined ? undefined : waves.canaryWaves(f.canary)) : waves.parseWaves(f.waves)
    if (!steps && (f.soak !== undefined || f['max-failed'] !== undefined)) throw waves.rolloutOnly(f.soak === undefined ? '--max-failed' : '--soak')
    const project = await openProject(f.dir)
    const targets = f.broker === undefined ? resolveTargets(project.targets, f, project.environments) : await selectTargets(project.dir, f, {connectTimeoutMs: f['connect-timeout'] * 1000, signal: this.signal})
    const secrets = await readSecrets(project.dir)
    // Targets connect and read their state while esbuild bundles.
    const built = buildProject(project, pipelines, f.env)
    const connect = await connector({connectTimeoutMs: f['connect-timeout'] * 1000, caFile: f.ca})
    const json = this.jsonEnabled()
    const progress = targetProgress(targets, {json})
    const options = {
      targets,
      project: built,
      connect,
      maxConcurrent: f['max-concurrent'],
      waitTimeoutMs: f['wait-timeout'] * 1000,
      dryRun: f['dry-run'],
      atomic: f.atomic,
      message: f.message,
      secrets,
      signal: this.signal,
      onStep: (target: Target, step: DeployStep, detail?: string) => progress.step(target, step, detail),
      onDone: (target: Target, result: TargetResult) => !f.atomic && progress.finish(target, result.status, result.error?.split('\n')[0]),
    }
    const render = await import('../deploy/render.js')
    let report: {what: string; result: DeployResult | RolloutOutput; lines: (out: ChalkInstance) => string[]}
    try {
      if (steps) {
        this.handlesInterrupt = true // Ctrl-C stops starting waves, then asks or rolls back
        const {runRollout} = await import('../fleet/rollout-run.js')
        const rolled = await runRollout({...options, steps, soakMs: waves.parseDuration(f.soak ?? '60s'), maxFailed: waves.parseMaxFailed(f['max-failed'] ?? '0')}, {projectDir: project.dir, json, progress})
        report = {what: 'Rollout', result: rolled, lines: (out) => render.renderRollout(rolled, out)}
      } else {
        const deployed = await deploy(options)
        await progress.close(deployed.targets)
        const dryRun = f['dry-run']
        report = {what: dryRun ? 'Planning' : 'Deploy', result: deployed, lines: (out) => (dryRun ? deployed.targets.flatMap((t) => render.renderPlanOf(t, out)) : render.renderDeploySummary(deployed.targets, out))}
      }
    } catch (error) {
      await progress.close([]) // a build error, say: the lines still going end, so nothing keeps the process
      throw error
    }
    const environment = f.env === undefined ? undefined : {name: f.env, overrides: (await built.catch(() => undefined))?.overrides ?? []}
    const output: DeployOutput = environment ? {...report.result, environment} : report.result
    return this.finishFleet(report.what, output, (out) => [...(environment ? render.renderOverrides(environment, out) : []), ...report.lines(out)])
  }
}
