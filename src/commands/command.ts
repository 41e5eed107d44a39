import {Args, Flags} from '@oclif/core'
import {BaseCommand, fleetFlags} from '../base-command.js'

export default class InstanceCommand extends BaseCommand<typeof InstanceCommand> {
  static override summary = 'Send a one-shot command to a plugin instance and wait for PLUGIN_INSTANCE_COMMAND_OK'
  static override description = "The instance's command() receives the name and the --param values (numbers, booleans and JSON are parsed; anything else stays a string). Its return value is shown as the result."
  static override examples = ['<%= config.bin %> command temps monitor-1 RESET --target edge-a', '<%= config.bin %> command apps runner RESTART --param delay=5 --all --json']

  static override args = {
    pipeline: Args.string({description: 'Pipeline NAME', required: true}),
    instance: Args.string({description: 'INSTANCE_ID', required: true}),
    command: Args.string({description: 'Command name, e.g. RESTART', required: true}),
  }

  static override flags = {
    ...fleetFlags,
    param: Flags.string({char: 'p', description: 'Command parameter KEY=VALUE (repeatable)', multiple: true}),
    signature: Flags.string({description: 'SIGNATURE of the instance, when its id is used by several plugins'}),
  }

  public async run() {
    const [{manage, instanceCommand, parseParams}, {renderTargetResults}] = await Promise.all([import('../deploy/manage.js'), import('../deploy/render.js')])
    const params = parseParams(this.flags.param ?? [])
    const args = {pipeline: this.args.pipeline, instanceId: this.args.instance, command: this.args.command, signature: this.flags.signature, params}
    const result = await manage(this.flags, this.signal, (link, _target, timeoutMs) => instanceCommand(link, args, timeoutMs))
    const detail = (i: number) => {
      const r = result.targets[i].result
      return r && 'result' in r ? `OK: ${JSON.stringify(r.result)}` : 'OK'
    }
    return this.finishFleet(`Command ${this.args.command}`, result, (out) => renderTargetResults(result.targets, detail, out))
  }
}
