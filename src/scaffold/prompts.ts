import {ExitCode, R1Error} from '../errors.js'

/** The questions `r1 init` may ask; on a terminal they are @inquirer/prompts on stderr. */
export interface Asker {
  select<T extends string>(message: string, choices: Array<{name: string; value: T; description?: string}>, initial?: T): Promise<T>
  input(message: string, initial: string, validate: (value: string) => string | undefined | Promise<string | undefined>): Promise<string>
  confirm(message: string, initial: boolean): Promise<boolean>
}

/** Prompts on the terminal (stderr, so stdout stays clean); Ctrl-C ends r1 init with exit 130. */
export function terminalAsker(signal?: AbortSignal): Asker {
  const context = {output: process.stderr, ...(signal ? {signal} : {})}
  const interrupted = (error: unknown): never => {
    const name = (error as Error)?.name
    if (name === 'ExitPromptError' || name === 'AbortPromptError') {
      throw new R1Error('r1 init was interrupted; nothing was written.', ExitCode.INTERRUPTED, {code: 'INTERRUPTED'})
    }
    throw error
  }
  return {
    async select(message, choices, initial) {
      const {select} = await import('@inquirer/prompts')
      return select({message, choices, ...(initial === undefined ? {} : {default: initial})}, context).catch(interrupted)
    },
    async input(message, initial, validate) {
      const {input} = await import('@inquirer/prompts')
      const answer = await input({message, default: initial, validate: async (value) => (await validate(value.trim())) ?? true}, context).catch(interrupted)
      return answer.trim()
    },
    async confirm(message, initial) {
      const {confirm} = await import('@inquirer/prompts')
      return confirm({message, default: initial}, context).catch(interrupted)
    },
  }
}
