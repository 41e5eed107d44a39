import {ExitCode, R1Error} from '../errors.js'

/** Prompts are allowed only on an interactive terminal and never under `--json`. */
export function canPrompt(json = false): boolean {
  return !json && Boolean(process.stdin.isTTY) && Boolean(process.stderr.isTTY)
}

/** The error for an answer that no prompt may ask for: it names the flag that gives it. */
export function missingAnswer(what: string, flag: string): R1Error {
  return new R1Error(`Missing ${what}: pass ${flag} (no prompt without a terminal).`, ExitCode.USAGE, {
    code: 'MISSING_FLAG',
    hint: `Run again with ${flag}, or --yes to take the defaults.`,
  })
}
