import type {PluginDefinition} from '../../plugin/define.js'
import type {HostApi} from '../instance-host.js'

/** Signatures the runtime provides itself: no bundle needed. */
export const BUILTIN_SIGNATURES = ['CUSTOM_EXEC_01', 'PROCESS_APP_RUNNER'] as const
export type BuiltinSignature = (typeof BUILTIN_SIGNATURES)[number]

export function isBuiltin(signature: string): signature is BuiltinSignature {
  return (BUILTIN_SIGNATURES as readonly string[]).includes(signature)
}

/** Loads only the built-in asked for: an instance process pays for nothing else. */
export async function createBuiltin(signature: string, host: HostApi): Promise<PluginDefinition<any>> {
  switch (signature) {
    case 'CUSTOM_EXEC_01':
      return (await import('./custom-exec.js')).createCustomExec()
    case 'PROCESS_APP_RUNNER':
      return (await import('./process-app-runner.js')).createProcessAppRunner(host)
    default:
      throw new Error(`Unknown built-in signature ${signature} (built-ins: ${BUILTIN_SIGNATURES.join(', ')})`)
  }
}
