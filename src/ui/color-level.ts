/**
 * Color only on a TTY, never with NO_COLOR or TERM=dumb; FORCE_COLOR wins. Chalk-free (chalk's
 * import costs ~10 ms), so fast paths such as `r1 validate` can decide before loading it.
 */
export function colorLevel(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): 0 | 1 | 2 | 3 {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false') return 1
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0
  if (env.TERM === 'dumb' || !stream.isTTY) return 0
  return 1
}
