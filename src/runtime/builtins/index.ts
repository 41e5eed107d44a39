import type {PluginDefinition} from '../../plugin/define.js'
import type {HostApi} from '../instance-host.js'
import {createCustomExec} from './custom-exec.js'
import {createProcessAppRunner} from './process-app-runner.js'

/** Signatures the runtime provides itself: no bundle needed. */
export const BUILTIN_SIGNATURES = ['CUSTOM_EXEC_01', 'PROCESS_APP_RUNNER'] as const
export type BuiltinSignature = (typeof BUILTIN_SIGNATURES)[number]

export function isBuiltin(signature: string): signature is BuiltinSignature {
  return (BUILTIN_SIGNATURES as readonly string[]).includes(signature)
}

export function createBuiltin(signature: string, host: HostApi): PluginDefinition<any> {
  switch (signature) {
    case 'CUSTOM_EXEC_01':
      return createCustomExec()
    case 'PROCESS_APP_RUNNER':
      return createProcessAppRunner(host)
    default:
      throw new Error(`Unknown built-in signature ${signature} (built-ins: ${BUILTIN_SIGNATURES.join(', ')})`)
  }
}
