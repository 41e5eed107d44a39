import {writeFileSync} from 'node:fs'
import {manifestJsonSchema} from './json-schema.js'

// Build step (`npm run build`): dist/manifest/write-schema.js writes dist/config.schema.json.
const target = new URL('../config.schema.json', import.meta.url)
writeFileSync(target, JSON.stringify(manifestJsonSchema(), null, 2) + '\n')
process.stdout.write(`wrote ${target.pathname}\n`)
