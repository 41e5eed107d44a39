import {existsSync} from 'node:fs'
import {access, readFile} from 'node:fs/promises'
import {isAbsolute, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {ExitCode, R1Error} from '../errors.js'
import {NotificationCode, NotificationType} from '../protocol/codes.js'
import {sha256Hex} from './bundle-store.js'

/**
 * Plugin bundles: one self-contained ES module per entry, named by the sha256 of its bytes
 * (the artifact `r1 run` runs and `r1 deploy` ships).
 */

export interface Bundle {
  /** Hex sha256 of `bytes`. */
  hash: string
  bytes: Uint8Array
  /** The entry, absolute. */
  entry: string
  /** Every source file that went into the bundle (absolute): what `--watch` watches. */
  inputs: string[]
}

export interface BundleDiagnostic {
  file: string
  line: number
  column: number
  message: string
  lineText?: string
}

/** The SDK source that `r1/plugin` resolves to inside a bundle (define.ts imports nothing). */
async function sdkModuleSource(): Promise<{contents: string; loader: 'js' | 'ts'}> {
  const js = fileURLToPath(new URL('../plugin/define.js', import.meta.url))
  const useJs = existsSync(js)
  const source = await readFile(useJs ? js : fileURLToPath(new URL('../plugin/define.ts', import.meta.url)), 'utf8')
  const constants = `\nexport const NotificationCode = Object.freeze(${JSON.stringify(NotificationCode)});\nexport const NotificationType = Object.freeze(${JSON.stringify(NotificationType)});\n`
  return {contents: source.replace(/\/\/# sourceMappingURL=.*$/m, '') + constants, loader: useJs ? 'js' : 'ts'}
}

function formatDiagnostic(d: BundleDiagnostic): string {
  return `${d.file}:${d.line}:${d.column} error: ${d.message}${d.lineText ? `\n    ${d.lineText.trim()}` : ''}`
}

/**
 * Bundles a TypeScript/JavaScript entry with esbuild (ESM, platform node, target node20;
 * `r1/plugin` inlined). A build error → R1Error (exit 3) with file:line:col diagnostics.
 */
export async function bundleEntry(entry: string, options: {projectDir?: string} = {}): Promise<Bundle> {
  const projectDir = resolve(options.projectDir ?? process.cwd())
  const entryPath = isAbsolute(entry) ? entry : resolve(projectDir, entry)
  const shown = (file: string) => (isAbsolute(file) ? relative(process.cwd(), file) || file : file)
  try {
    await access(entryPath)
  } catch {
    throw new R1Error(`Plugin entry not found: ${shown(entryPath)}`, ExitCode.INVALID_CONFIG, {code: 'BUNDLE_ENTRY_MISSING', hint: 'Check the `entry` of the plugin in config.yaml.'})
  }
  const esbuild = await import('esbuild')
  const sdk = await sdkModuleSource()
  try {
    const result = await esbuild.build({
      entryPoints: [entryPath],
      absWorkingDir: projectDir,
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      // stacks on the node map to the plugin's own files and lines; the sources' text is not shipped (half the
      // bundle), so a change to ordinary comments that moves no code is no new bundle
      sourcemap: 'inline',
      sourcesContent: false,
      metafile: true,
      logLevel: 'silent',
      // bundled CommonJS dependencies may call require() for Node built-ins
      banner: {js: "import {createRequire as __r1CreateRequire} from 'node:module'; const require = __r1CreateRequire(import.meta.url);"},
      plugins: [
        {
          name: 'r1-plugin-sdk',
          setup(build) {
            build.onResolve({filter: /^r1\/plugin$/}, () => ({path: 'r1/plugin', namespace: 'r1-sdk'}))
            build.onLoad({filter: /.*/, namespace: 'r1-sdk'}, () => sdk)
          },
        },
      ],
    })
    const bytes = result.outputFiles[0].contents
    const inputs = Object.keys(result.metafile.inputs)
      .filter((input) => !input.startsWith('r1-sdk:'))
      .map((input) => resolve(projectDir, input))
    return {hash: sha256Hex(bytes), bytes, entry: entryPath, inputs}
  } catch (error) {
    const messages = (error as {errors?: Array<{text: string; location: {file: string; line: number; column: number; lineText: string} | null}>}).errors
    if (!messages) throw error
    const diagnostics: BundleDiagnostic[] = messages.map((m) => ({
      file: m.location ? shown(resolve(projectDir, m.location.file)) : shown(entryPath),
      line: m.location?.line ?? 1,
      column: (m.location?.column ?? 0) + 1,
      message: m.text,
      ...(m.location?.lineText ? {lineText: m.location.lineText} : {}),
    }))
    throw new R1Error(`Cannot bundle ${shown(entryPath)}:\n${diagnostics.map(formatDiagnostic).join('\n')}`, ExitCode.INVALID_CONFIG, {
      code: 'BUNDLE_FAILED',
      hint: 'Fix the error above; the plugin entry must be a TypeScript or JavaScript module whose default export is definePlugin({...}).',
      details: {diagnostics},
    })
  }
}

export {BundleStore, DEFAULT_BUNDLE_GRACE_MS, DEFAULT_BUNDLE_QUOTA_BYTES, sha256Hex, type BundleStoreOptions} from './bundle-store.js'
