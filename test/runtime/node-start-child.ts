// Child process for the node-state tests (not a test file): `r1 node start …` as bin/run.js runs it, from the sources.
import {fastNodeStart} from '../../src/runtime/node-main.js'

const code = await fastNodeStart(['node', 'start', ...process.argv.slice(2)])
process.exit(code ?? 2)
