import {Chalk, type ChalkInstance} from 'chalk'
import {colorLevel} from './color-level.js'

export {colorLevel} from './color-level.js'

/** Chalk for human output on stdout. */
export const out: ChalkInstance = new Chalk({level: colorLevel(process.stdout)})
/** Chalk for progress, warnings and errors on stderr. */
export const err: ChalkInstance = new Chalk({level: colorLevel(process.stderr)})
