import {homedir} from 'node:os'
import {join} from 'node:path'

/**
 * The default data dir of `r1 node` (`$XDG_DATA_HOME/r1/node`, else `~/.local/share/r1/node`) or of
 * `r1 broker` (`…/r1/broker`). Its own module, so the allow-list and broker user commands find it
 * without loading the node server or the broker.
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, kind: 'node' | 'broker' = 'node'): string {
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'r1', kind)
}
