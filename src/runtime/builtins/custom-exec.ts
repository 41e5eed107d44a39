import {decodeCode} from '../../manifest/fields.js'
import {definePlugin, type PluginContext} from '../../plugin/define.js'

/**
 * CUSTOM_EXEC_01: `CODE` is the body of an async function with `plugin` (the instance ctx, plus a
 * persistent `obj_cache` object) in scope, run every PROCESS_DELAY. Its value → `EXEC_RESULT`;
 * a throw → `EXEC_ERRORS` plus an EXCEPTION notification (the process loop backs off).
 */

type ExecFunction = (plugin: unknown) => Promise<unknown>

const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => ExecFunction

function compile(code: unknown): ExecFunction {
  if (typeof code !== 'string' || code.trim() === '') throw new Error('CUSTOM_EXEC_01 needs CODE: the body of an async function, e.g. "return {T: Date.now()}"')
  // plain JavaScript, or base64 of zlib as Ratio1 sends it
  const source = decodeCode(code)
  try {
    return new AsyncFunction('plugin', source)
  } catch (error) {
    throw new Error(`CUSTOM_EXEC_01 CODE does not compile: ${(error as Error).message}`)
  }
}

export function createCustomExec() {
  let fn: ExecFunction | undefined
  const cache: Record<string, unknown> = {}
  const pluginOf = (ctx: PluginContext) => Object.assign(Object.create(ctx) as object, {obj_cache: cache})
  return definePlugin({
    init(ctx) {
      fn = compile(ctx.config.CODE)
    },
    config(_ctx, next) {
      // compile first: a CODE that does not compile is rejected and the previous one keeps running
      fn = compile(next.CODE)
    },
    async process(ctx) {
      try {
        const result = await fn!(pluginOf(ctx))
        if (result === undefined) return undefined
        return {EXEC_RESULT: result, EXEC_ERRORS: null}
      } catch (error) {
        ctx.emit({EXEC_RESULT: null, EXEC_ERRORS: [error instanceof Error ? `${error.name}: ${error.message}` : String(error)]})
        throw error
      }
    },
  })
}
