import type {Hook} from '@oclif/core'
import {ExitCode, R1Error} from '../errors.js'
import {closest} from '../manifest/diagnostics.js'

/**
 * A mistyped command: say what the closest command is and exit 2 (usage). No prompt, so a script
 * with a typo fails at once instead of waiting for an answer.
 */
const hook: Hook.CommandNotFound = async function (options) {
  const visible = options.config.commands.filter((c) => !c.hidden).flatMap((c) => [c.id, ...c.aliases])
  const spaced = (id: string) => id.replaceAll(':', ' ')
  const match = closest(options.id, visible)
  const hint = match ? `Did you mean "${options.config.bin} ${spaced(match)}"?` : `Run "${options.config.bin} help" for a list of commands.`
  const error = new R1Error(`"${spaced(options.id)}" is not an ${options.config.bin} command. ${hint}`, ExitCode.USAGE, {code: 'UNKNOWN_COMMAND'})
  if (options.argv?.includes('--json')) {
    process.stdout.write(JSON.stringify({error: {code: error.code, message: error.message, exitCode: error.exitCode}}, null, 2) + '\n')
  } else {
    process.stderr.write(`✖ ${error.message}\n`)
  }
  process.exit(error.exitCode)
}

export default hook
