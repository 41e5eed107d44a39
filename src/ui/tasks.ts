import {Listr, type ListrTask} from 'listr2'

export interface TaskOptions {
  /** Under `--json` progress is silent. */
  json?: boolean
  concurrent?: boolean | number
  exitOnError?: boolean
}

/** listr2 on stderr: silent under `--json`, the simple renderer without a TTY or in CI. */
export function tasks<Ctx extends object>(list: ListrTask<Ctx>[], options: TaskOptions = {}): Listr<Ctx> {
  const plain = !process.stderr.isTTY || Boolean(process.env.CI) || process.env.TERM === 'dumb'
  return new Listr<Ctx>(list, {
    concurrent: options.concurrent ?? false,
    exitOnError: options.exitOnError ?? true,
    renderer: options.json ? 'silent' : plain ? 'simple' : 'default',
    fallbackRenderer: 'simple',
    rendererOptions: {output: process.stderr} as never,
    fallbackRendererOptions: {output: process.stderr} as never,
  } as never)
}
