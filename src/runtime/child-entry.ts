import {existsSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

/**
 * How to fork a runtime module as a child process: the compiled `.js` next to this file when the
 * package is built (dist), else the `.ts` source through tsx (vitest, bin/dev.js).
 */
export function childEntry(name: string): {modulePath: string; execArgv: string[]} {
  // looked up once: r1's own code does not move while it runs (a node forks one per instance start)
  let entry = entries.get(name)
  if (!entry) {
    const js = fileURLToPath(new URL(`./${name}.js`, import.meta.url))
    const ts = fileURLToPath(new URL(`./${name}.ts`, import.meta.url))
    entry = existsSync(js) ? {modulePath: js, execArgv: ['--enable-source-maps']} : {modulePath: ts, execArgv: ['--enable-source-maps', '--import', tsxLoaderUrl()]}
    entries.set(name, entry)
  }
  return {modulePath: entry.modulePath, execArgv: [...entry.execArgv]}
}

const entries = new Map<string, {modulePath: string; execArgv: string[]}>()

let tsxLoader: string | undefined

/** An absolute URL for tsx's loader, so the child needs no particular cwd. */
function tsxLoaderUrl(): string {
  if (tsxLoader) return tsxLoader
  const require = createRequire(import.meta.url)
  const manifestPath = require.resolve('tsx/package.json')
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {exports: {'.': string | {import?: string; default?: string}}}
  const entry = manifest.exports['.']
  const relative = typeof entry === 'string' ? entry : (entry.import ?? entry.default ?? './dist/loader.mjs')
  tsxLoader = pathToFileURL(join(dirname(manifestPath), relative)).href
  return tsxLoader
}
