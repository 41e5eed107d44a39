/** Exit codes of every r1 command (ARCHITECTURE.md §7; the README shows this table). */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  INVALID_CONFIG: 3,
  REJECTED: 4,
  TIMEOUT: 5,
  PARTIAL: 6,
  UNREACHABLE: 7,
  /** A rollout was aborted by its criteria and every node that took the new version was put back. */
  ROLLED_BACK: 8,
  INTERRUPTED: 130,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

export interface R1ErrorOptions {
  /** Stable machine-readable code, e.g. `MANIFEST_NOT_FOUND`. */
  code?: string
  /** What the user can do next. */
  hint?: string
  /** Extra data for the `--json` error document. */
  details?: unknown
  cause?: unknown
}

/** The one error type domain code throws; the base command maps it to an exit code and output. */
export class R1Error extends Error {
  readonly exitCode: ExitCode
  readonly code: string
  readonly hint?: string
  readonly details?: unknown

  constructor(message: string, exitCode: ExitCode = ExitCode.FAILURE, options: R1ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'R1Error'
    this.exitCode = exitCode
    this.code = options.code ?? 'R1_ERROR'
    this.hint = options.hint
    this.details = options.details
  }
}

/** Exit code for any thrown value: R1Error's own, oclif's parse errors (2), else 1. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof R1Error) return error.exitCode
  const oclifExit = (error as {oclif?: {exit?: unknown}})?.oclif?.exit
  if (typeof oclifExit === 'number') return oclifExit
  return ExitCode.FAILURE
}
