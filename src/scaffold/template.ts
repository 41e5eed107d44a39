import {readdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {parse as parseYaml} from 'yaml'
import {z} from 'zod'
import {ExitCode, R1Error} from '../errors.js'
import {BUILTIN_TEMPLATES_DIR} from './package-root.js'

/** The file in a template folder that describes it; never copied into a project. */
export const TEMPLATE_META_FILE = 'template.json'

/**
 * A template's description. Each `variables` value is both the default answer and the literal text
 * that rendering replaces in every file's content and path (the template folder itself stays a
 * valid, runnable project with these real values).
 */
export const TemplateMetaSchema = z.strictObject({
  description: z.string().min(1),
  /** Position in `r1 templates` (lower first). */
  order: z.number().int().optional(),
  variables: z.strictObject({
    /** The project name (kebab-case) as written in config.yaml, package.json, README. */
    name: z.string().min(1),
    /** The first plugin's signature (UPPER_SNAKE); absent when the template has no plugin of its own. */
    signature: z.string().min(1).optional(),
    /** The `$schema=` path in config.yaml's first line; rewritten to r1's schema inside node_modules. */
    schemaPath: z.string().min(1).optional(),
    /** The version spec of the `r1` dependency in package.json; rewritten to the r1 that renders it. */
    r1Dependency: z.string().min(1).optional(),
  }),
  /** Files renamed on the way out (e.g. `gitignore` → `.gitignore`, which npm would drop from a package). */
  rename: z.record(z.string(), z.string()).default({}),
  /** Top-level entries never copied, besides `.git`, `node_modules`, `.r1` and template.json. */
  exclude: z.array(z.string()).default([]),
})
export type TemplateMeta = z.infer<typeof TemplateMetaSchema>

export interface TemplateInfo {
  id: string
  description: string
  dir: string
}

/** Reads template.json, or infers the variables from config.yaml and package.json when there is none. */
export async function loadTemplateMeta(dir: string): Promise<TemplateMeta> {
  const metaPath = join(dir, TEMPLATE_META_FILE)
  const text = await readFile(metaPath, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined
    throw error
  })
  if (text === undefined) return inferTemplateMeta(dir)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new R1Error(`${metaPath}: not valid JSON (${(error as Error).message}).`, ExitCode.INVALID_CONFIG, {code: 'TEMPLATE_META_INVALID', hint: 'Fix the file, or delete it to infer the template variables from config.yaml.'})
  }
  const parsed = TemplateMetaSchema.safeParse(json)
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`).join('\n')
    throw new R1Error(`${metaPath} is invalid:\n${issues}`, ExitCode.INVALID_CONFIG, {code: 'TEMPLATE_META_INVALID', details: parsed.error.issues})
  }
  return parsed.data
}

/** Any r1 project can serve as a template: its name, first signature, schema path and r1 spec become the variables. */
async function inferTemplateMeta(dir: string): Promise<TemplateMeta> {
  const configText = await readFile(join(dir, 'config.yaml'), 'utf8').catch(() => '')
  let manifest: {name?: unknown; description?: unknown; plugins?: unknown} = {}
  try {
    const doc = parseYaml(configText) as unknown
    if (doc && typeof doc === 'object') manifest = doc as typeof manifest
  } catch {
    // config.yaml is checked by the validator, which reports what is wrong with it
  }
  const name = typeof manifest.name === 'string' && manifest.name ? manifest.name : 'my-project'
  const signature = manifest.plugins && typeof manifest.plugins === 'object' ? Object.keys(manifest.plugins)[0] : undefined
  const schemaPath = /^#\s*yaml-language-server:\s*\$schema=(\S+)/m.exec(configText)?.[1]
  let r1Dependency: string | undefined
  try {
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>
    r1Dependency = pkg.dependencies?.r1 ?? pkg.devDependencies?.r1
  } catch {
    // no package.json: nothing to rewrite
  }
  return {
    description: typeof manifest.description === 'string' ? manifest.description : `Project ${name}`,
    variables: {name, ...(signature ? {signature} : {}), ...(schemaPath ? {schemaPath} : {}), ...(r1Dependency ? {r1Dependency} : {})},
    rename: {},
    exclude: [],
  }
}

/** The built-in templates, in display order. */
export async function listBuiltinTemplates(root: string = BUILTIN_TEMPLATES_DIR): Promise<TemplateInfo[]> {
  const entries = await readdir(root, {withFileTypes: true}).catch(() => [])
  const found: Array<TemplateInfo & {order: number}> = []
  for (const entry of entries) {
    if (!entry.isDirectory()) continue
    const dir = join(root, entry.name)
    const hasMeta = await stat(join(dir, TEMPLATE_META_FILE)).then(() => true, () => false)
    if (!hasMeta) continue
    const meta = await loadTemplateMeta(dir)
    found.push({id: entry.name, description: meta.description, dir, order: meta.order ?? Number.MAX_SAFE_INTEGER})
  }
  found.sort((a, b) => a.order - b.order || a.id.localeCompare(b.id))
  return found.map(({id, description, dir}) => ({id, description, dir}))
}
