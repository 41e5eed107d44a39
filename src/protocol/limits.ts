import {ExitCode, R1Error} from '../errors.js'
import {needsEscape} from './canonical.js'
import {formatBytes} from '../ui/bytes.js'

/**
 * Bounds on what a command may carry, the same for every action, checked before anything else
 * (the node core calls `assertCommandLimits` first; admission code may call `commandLimitProblem`
 * to refuse earlier). Pure: no I/O, no recursion, so a hostile payload cannot exhaust the stack.
 */

export const COMMAND_LIMITS = {
  /** Canonical JSON size of a command's PAYLOAD (bundle chunks excepted: they have their own bound). */
  maxPayloadBytes: 256 * 1024,
  /** Nesting depth of objects and arrays in a PAYLOAD (the payload itself is depth 1). */
  maxDepth: 32,
  /** Objects, arrays and values in one PAYLOAD. */
  maxNodes: 100_000,
  /** Pipeline NAME, INSTANCE_ID and SIGNATURE length. */
  maxNameLength: 200,
} as const

/** Pipeline names and instance ids: what config.yaml accepts (a shell, a URL path and Ratio1 take them unquoted). */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/
/** Plugin signatures: UPPER_SNAKE. */
export const SIGNATURE_PATTERN = /^[A-Z][A-Z0-9_]{0,199}$/

export interface LimitProblem {
  /** `LIMIT_EXCEEDED` (too big or too deep) or `BAD_PAYLOAD` (a name outside its charset). */
  code: 'LIMIT_EXCEEDED' | 'BAD_PAYLOAD'
  message: string
  hint?: string
}

type Walk = {bytes: number; nodes: number} | LimitProblem

/**
 * Depth, node count and an upper-bound estimate of the canonical JSON size, iteratively, stopping at the
 * first bound passed (a 100,000-deep or 500 MB payload costs no more than the bound to refuse).
 */
function walk(value: unknown, maxBytes: number): Walk {
  const stack: Array<[unknown, number]> = [[value, 1]]
  let bytes = 0
  let nodes = 0
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!
    if (++nodes > COMMAND_LIMITS.maxNodes) return {code: 'LIMIT_EXCEEDED', message: `PAYLOAD holds more than ${COMMAND_LIMITS.maxNodes} values`}
    if (item !== null && typeof item === 'object') {
      if (depth > COMMAND_LIMITS.maxDepth) return {code: 'LIMIT_EXCEEDED', message: `PAYLOAD is nested deeper than ${COMMAND_LIMITS.maxDepth} levels`, hint: 'Flatten the config: a pipeline config needs a few levels, not dozens.'}
      const width = Array.isArray(item) ? item.length : Object.keys(item).length
      if (nodes + stack.length + width > COMMAND_LIMITS.maxNodes) return {code: 'LIMIT_EXCEEDED', message: `PAYLOAD holds more than ${COMMAND_LIMITS.maxNodes} values`}
      if (Array.isArray(item)) {
        bytes += 2 + Math.max(0, item.length - 1)
        for (const element of item) stack.push([element, depth + 1])
      } else {
        const keys = Object.keys(item)
        bytes += 2 + Math.max(0, keys.length - 1)
        for (const key of keys) {
          bytes += jsonBytes(key) + 1
          stack.push([(item as Record<string, unknown>)[key], depth + 1])
        }
      }
    } else {
      bytes += item === undefined ? 0 : jsonBytes(item)
    }
    if (bytes > maxBytes) return {code: 'LIMIT_EXCEEDED', message: `PAYLOAD is larger than ${formatBytes(maxBytes)} of canonical JSON`, hint: 'Keep large data out of pipeline configs (ship it in the plugin bundle or fetch it at run time).'}
  }
  return {bytes, nodes}
}

function jsonBytes(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value) + 2 + countEscapes(value)
  if (typeof value === 'number') return Number.isFinite(value) ? String(value).length : 4
  if (typeof value === 'boolean') return value ? 4 : 5
  return 4 // null, and what canonical JSON renders as null
}

function countEscapes(text: string): number {
  // most strings have none (a base64 bundle has tens of KiB without one): a native scan says so at once
  if (!needsEscape(text)) return 0
  let extra = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 || c === 0x5c) extra += 1
    else if (c < 0x20) extra += 5
  }
  return extra
}

function nameProblem(what: 'NAME' | 'INSTANCE_ID' | 'SIGNATURE', value: unknown): LimitProblem | undefined {
  if (typeof value !== 'string' || value === '') return {code: 'BAD_PAYLOAD', message: `${what} must be a non-empty string`}
  const shown = value.length > 60 ? `${JSON.stringify(value.slice(0, 60))}…` : JSON.stringify(value)
  if (value.length > COMMAND_LIMITS.maxNameLength) {
    return {code: 'LIMIT_EXCEEDED', message: `${what} ${shown} is ${value.length} characters long; at most ${COMMAND_LIMITS.maxNameLength}`}
  }
  if (what === 'SIGNATURE') {
    if (!SIGNATURE_PATTERN.test(value)) return {code: 'BAD_PAYLOAD', message: `SIGNATURE ${shown} must be UPPER_SNAKE (A-Z, 0-9, _; starting with a letter)`}
  } else if (!NAME_PATTERN.test(value)) {
    return {code: 'BAD_PAYLOAD', message: `${what} ${shown} may hold only letters, digits, '_', '.' and '-', starting with a letter or digit`}
  }
  return undefined
}

const asRecord = (value: unknown): Record<string, unknown> | undefined => (value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined)

/** The names a pipeline config carries: NAME, every SIGNATURE and INSTANCE_ID (shape errors are left to the schema). */
function pipelineNames(config: Record<string, unknown>): LimitProblem | undefined {
  const problem = nameProblem('NAME', config.NAME)
  if (problem) return problem
  if (!Array.isArray(config.PLUGINS)) return undefined
  for (const plugin of config.PLUGINS) {
    const p = asRecord(plugin)
    if (!p) continue
    const bad = nameProblem('SIGNATURE', p.SIGNATURE)
    if (bad) return bad
    if (!Array.isArray(p.INSTANCES)) continue
    for (const instance of p.INSTANCES) {
      const id = asRecord(instance)?.INSTANCE_ID
      const badId = nameProblem('INSTANCE_ID', id)
      if (badId) return badId
    }
  }
  return undefined
}

function instanceUpdateNames(item: unknown): LimitProblem | undefined {
  const update = asRecord(item)
  if (!update) return undefined
  return nameProblem('NAME', update.NAME) ?? nameProblem('SIGNATURE', update.SIGNATURE) ?? nameProblem('INSTANCE_ID', update.INSTANCE_ID)
}

/** A name given as `"<name>"` or `{NAME}`. */
function nameOf(payload: unknown): unknown {
  return typeof payload === 'string' ? payload : asRecord(payload)?.NAME
}

/**
 * What is wrong with `payload` for `action` as far as size, depth and names go, or undefined.
 * Shape problems (a missing key, a wrong type) are left to the action's schema.
 */
export function commandLimitProblem(action: string, payload: unknown): LimitProblem | undefined {
  // bundle and R1FS chunks are bounded by the frame size and their own schema (base64 of 512 KiB is above the config bound)
  const measured = walk(payload, action === 'R1_BUNDLE_PUT' || action === 'R1_R1FS_ADD' ? Number.POSITIVE_INFINITY : COMMAND_LIMITS.maxPayloadBytes)
  if ('code' in measured) return {...measured, message: `${action}: ${measured.message}`}
  let problem: LimitProblem | undefined
  switch (action) {
    case 'UPDATE_CONFIG': {
      const config = asRecord(payload)
      problem = config ? pipelineNames(config) : undefined
      break
    }
    case 'DELETE_CONFIG':
    case 'ARCHIVE_CONFIG':
    case 'PIPELINE_COMMAND':
    case 'R1_ROLLBACK':
    case 'R1_SECRETS':
      problem = nameProblem('NAME', nameOf(payload))
      break
    case 'R1_RESTART': {
      const restart = asRecord(payload)
      problem = nameProblem('NAME', restart?.NAME) ?? (restart?.INSTANCE_ID === undefined ? undefined : nameProblem('INSTANCE_ID', restart.INSTANCE_ID)) ?? (restart?.SIGNATURE === undefined ? undefined : nameProblem('SIGNATURE', restart.SIGNATURE))
      break
    }
    case 'R1_STATE': {
      const name = asRecord(payload)?.NAME
      problem = name === undefined ? undefined : nameProblem('NAME', name)
      break
    }
    case 'UPDATE_PIPELINE_INSTANCE':
      problem = instanceUpdateNames(payload)
      break
    case 'BATCH_UPDATE_PIPELINE_INSTANCE': {
      const list = Array.isArray(payload) ? payload : asRecord(payload)?.BATCH
      if (Array.isArray(list)) {
        for (const item of list) {
          problem = instanceUpdateNames(item)
          if (problem) break
        }
      }
      break
    }
  }
  return problem ? {...problem, message: `${action}: ${problem.message}`} : undefined
}

/** Throws the R1Error (exit 4, code LIMIT_EXCEEDED or BAD_PAYLOAD) for `commandLimitProblem`'s finding. */
export function assertCommandLimits(action: string, payload: unknown): void {
  const problem = commandLimitProblem(action, payload)
  if (problem) throw new R1Error(problem.message, ExitCode.REJECTED, {code: problem.code, ...(problem.hint ? {hint: problem.hint} : {})})
}
