import {ExitCode, R1Error} from '../errors.js'
import {canPrompt} from '../ui/prompts.js'
import {MAX_SECRET_BYTES} from './store.js'
import {formatBytes} from '../ui/bytes.js'

/**
 * A secret's value: piped on stdin, or typed at a hidden prompt on a terminal. Never from argv
 * (shell history, `ps`). One trailing newline of piped input is dropped (`echo "$X" | r1 secrets set X`).
 */
export async function readSecretValue(name: string, options: {json?: boolean; signal?: AbortSignal; stdin?: NodeJS.ReadableStream & {isTTY?: boolean}; usage?: string} = {}): Promise<string> {
  const stdin = options.stdin ?? process.stdin
  const usage = options.usage ?? `r1 secrets set ${name} < value.txt`
  let value: string
  if (stdin.isTTY) {
    if (!canPrompt(options.json)) {
      throw new R1Error(`No value for ${name}: pipe it on stdin (no prompt under --json or without a terminal).`, ExitCode.USAGE, {
        code: 'SECRET_VALUE_MISSING',
        hint: `e.g. ${usage}`,
      })
    }
    value = await prompt(name, options.signal)
  } else {
    value = (await readAll(stdin)).replace(/\r?\n$/, '')
  }
  if (value.length === 0) {
    throw new R1Error(`The value of ${name} is empty: nothing was stored.`, ExitCode.USAGE, {
      code: 'SECRET_VALUE_EMPTY',
      hint: options.usage ? `Pipe it on stdin (${options.usage}) or type it at the prompt.` : `Pipe the value on stdin (printf %s "$VALUE" | r1 secrets set ${name}) or type it at the prompt; \`r1 secrets rm ${name}\` removes one.`,
    })
  }
  return value
}

async function prompt(name: string, signal?: AbortSignal): Promise<string> {
  const {password} = await import('@inquirer/prompts')
  try {
    return await password({message: `Value of ${name}`, mask: true}, {output: process.stderr, ...(signal ? {signal} : {})})
  } catch (error) {
    const kind = (error as Error)?.name
    if (kind === 'ExitPromptError' || kind === 'AbortPromptError') {
      throw new R1Error('Interrupted: nothing was stored.', ExitCode.INTERRUPTED, {code: 'INTERRUPTED'})
    }
    throw error
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    size += buffer.length
    // Refuse early rather than buffer a whole file piped by mistake.
    if (size > MAX_SECRET_BYTES + 2) {
      throw new R1Error(`The value on stdin is over ${formatBytes(MAX_SECRET_BYTES)}.`, ExitCode.USAGE, {
        code: 'SECRET_TOO_LARGE',
        hint: 'A secret holds a credential; ship files with the project instead.',
      })
    }
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** Where a secret comes from: a file, an environment variable, or stdin (a hidden prompt on a terminal). Never a flag's value. */
export interface SecretSource {
  'secret-file'?: string
  'secret-env'?: string
  'secret-stdin'?: boolean
}

/**
 * The secret named by at most one of the `--secret-*` flags (undefined when none is given): a file's
 * content or an environment variable's value (one trailing newline dropped), or stdin as `r1 secrets
 * set` reads it. An empty or unreadable one is a usage error.
 */
export async function readSecretFrom(source: SecretSource, options: {json?: boolean; signal?: AbortSignal} = {}): Promise<string | undefined> {
  const given = (['secret-file', 'secret-env', 'secret-stdin'] as const).filter((flag) => source[flag] !== undefined && source[flag] !== false)
  if (given.length === 0) return undefined
  if (given.length > 1) throw new R1Error(`--${given.join(' and --')} do not go together: give the secret one way.`, ExitCode.USAGE, {code: 'SECRET_SOURCES'})
  let value: string
  if (source['secret-file'] !== undefined) {
    const {readFile} = await import('node:fs/promises')
    try {
      value = (await readFile(source['secret-file'], 'utf8')).replace(/\r?\n$/, '')
    } catch (error) {
      throw new R1Error(`Cannot read the secret file ${source['secret-file']}: ${(error as Error).message}`, ExitCode.USAGE, {code: 'SECRET_UNREADABLE'})
    }
  } else if (source['secret-env'] !== undefined) {
    value = process.env[source['secret-env']] ?? ''
  } else {
    value = await readSecretValue('the secret', options)
  }
  if (value.length === 0) {
    throw new R1Error(`The secret from --${given[0]} is empty.`, ExitCode.USAGE, {code: 'SECRET_VALUE_EMPTY', hint: 'An encrypted file needs a non-empty secret; leave the --secret-* flags out to store it in the clear.'})
  }
  return value
}
