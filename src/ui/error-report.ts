import {R1Error, exitCodeOf} from '../errors.js'
import {err as stderrColor} from './colors.js'
import {escapeControlKeepLines} from './escape.js'

/** The `--json` error document. */
export interface ErrorJson {
  error: {code: string; message: string; exitCode: number; hint?: string; details?: unknown}
}

/** What every r1 command prints under `--json` when it fails (the base command and the oclif-free fast paths). */
export function errorJson(error: unknown): ErrorJson {
  const e = error instanceof R1Error ? error : undefined
  const message = error instanceof Error ? error.message : String(error)
  const code = (error as {code?: unknown} | null)?.code
  return {
    error: {
      code: e?.code ?? (code && typeof code === 'string' ? code : 'ERROR'),
      message: stripAnsi(message),
      exitCode: exitCodeOf(error),
      ...(e?.hint ? {hint: e.hint} : {}),
      ...(e?.details === undefined ? {} : {details: e.details}),
    },
  }
}

/** The human form on stderr: `✖ message`, then `→ hint`, and the stack with DEBUG set. */
export function errorText(error: Error): string {
  // messages quote node data (a rejection's reason, a pipeline name): its control characters are shown, not run
  const hint = error instanceof R1Error && error.hint ? `\n${stderrColor.dim('→ ' + escapeControlKeepLines(error.hint))}` : ''
  const debug = process.env.DEBUG && error.stack ? `\n${escapeControlKeepLines(error.stack)}` : ''
  return `${stderrColor.red('✖')} ${escapeControlKeepLines(stripAnsi(error.message))}${hint}${debug}\n`
}

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001B\[[0-9;]*m/g, '')
}
