import {canonicalJson} from '../protocol/canonical.js'
import {wireTextOf} from '../protocol/wire.js'

/**
 * One NDJSON line for an event (`r1 logs --json`, `r1 run --json`): the node's canonical JSON of it,
 * as signed when the session kept the text (`wireTexts`), else made again; with `target`, labelled
 * `R1_TARGET` (many nodes in one stream).
 */
export function eventJsonLine(entry: object, target?: string): string {
  const text = wireTextOf(entry) ?? canonicalJson(entry)
  return (target === undefined ? text : text.slice(0, -1) + `,"R1_TARGET":${JSON.stringify(target)}}`) + '\n'
}
