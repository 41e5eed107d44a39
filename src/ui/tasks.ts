import {LISTR_LOGGER_STYLE, Listr, ListrLogger, ListrLogLevels, ProcessOutput, type ListrTask} from 'listr2'

export interface TaskOptions {
  /** Under `--json` progress is silent. */
  json?: boolean
  concurrent?: boolean | number
  exitOnError?: boolean
}

/** Whether progress is written as plain lines (no TTY, CI, a dumb terminal) rather than redrawn. */
export function plainProgress(): boolean {
  return !process.stderr.isTTY || Boolean(process.env.CI) || process.env.TERM === 'dumb'
}

// listr2 renderers write to stdout unless their logger's process output says otherwise
const logger = (style?: typeof LISTR_LOGGER_STYLE) => new ListrLogger({useIcons: true, ...style, processOutput: new ProcessOutput(process.stderr, process.stderr)})

/** A line as the plain renderer writes a task's end (its icon, then `text`): what a line already ended can no longer say. */
export function plainTaskLine(failed: boolean, text: string): void {
  logger(LISTR_LOGGER_STYLE).log(failed ? ListrLogLevels.FAILED : ListrLogLevels.COMPLETED, text)
}

/** listr2 on stderr: silent under `--json`, the simple renderer when progress is plain. */
export function tasks<Ctx extends object>(list: ListrTask<Ctx>[], options: TaskOptions = {}): Listr<Ctx> {
  const plain = plainProgress()
  return new Listr<Ctx>(list, {
    concurrent: options.concurrent ?? false,
    exitOnError: options.exitOnError ?? true,
    // Ctrl-C belongs to the base command (cleanups, exit 130; a rollout rolls back): listr2's own handler exits 127
    registerSignalListeners: false,
    renderer: options.json ? 'silent' : plain ? 'simple' : 'default',
    fallbackRenderer: 'simple',
    rendererOptions: {logger: logger()} as never,
    fallbackRendererOptions: {logger: logger()} as never,
  } as never)
}

/**
 * Lines written while listr2 redraws its task list on a terminal would be erased or repeated by the
 * redraw (stdout and stderr share the screen): hold them, and let them out once the tasks are done.
 */
export function heldOutput(hold: boolean): {write(stream: NodeJS.WritableStream, text: string): void; release(): void} {
  let held: Array<[NodeJS.WritableStream, string]> | undefined = hold ? [] : undefined
  return {
    write(stream, text) {
      if (held) held.push([stream, text])
      else stream.write(text)
    },
    release() {
      const lines = held ?? []
      held = undefined
      for (const [stream, text] of lines) stream.write(text)
    },
  }
}
