import {homedir} from 'node:os'
import {join} from 'node:path'

/**
 * `r1 node`'s default data dir: `$XDG_DATA_HOME/r1/node`, else `~/.local/share/r1/node`. Its own
 * module, so the allow-list commands find it without loading the node server.
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'r1', 'node')
}
