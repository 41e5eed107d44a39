import {Schema, Type, load} from 'js-yaml'

/**
 * The fast parse for `r1 validate` (ARCHITECTURE.md §8): js-yaml loads a 100-pipeline manifest ~7× faster
 * than yaml@2, which stays the single source of positions and of YAML diagnostics (positions.ts).
 * `quickLoad` answers only when it can vouch that yaml@2 (core schema, `merge`, `uniqueKeys`,
 * `maxAliasCount: 1000`) would give the same value without any error; otherwise it returns
 * undefined and the caller parses with yaml@2. Tests compare both on every fixture and on
 * thousands of mutated manifests.
 */

// yaml@2's core schema, scalar for scalar (its regexes and constructors), under private tags: any
// explicit tag (`!!str`, `!!binary`, `!foo`) is unknown here, so js-yaml throws and yaml@2 decides.
const PRIVATE = 'tag:r1.invalid,2026:'
const MERGE = 'tag:yaml.org,2002:merge'
const scalar = (name: string, test: RegExp, construct: (text: string) => unknown) =>
  new Type(PRIVATE + name, {kind: 'scalar', resolve: (text: string | null) => text !== null && test.test(text), construct})
const CORE = new Schema({
  implicit: [
    scalar('null', /^(?:~|[Nn]ull|NULL)?$/, () => null),
    scalar('bool', /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, (text) => text[0] === 't' || text[0] === 'T'),
    scalar('int-oct', /^0o[0-7]+$/, (text) => parseInt(text.slice(2), 8)),
    scalar('int', /^[-+]?[0-9]+$/, (text) => parseInt(text, 10)),
    scalar('int-hex', /^0x[0-9a-fA-F]+$/, (text) => parseInt(text.slice(2), 16)),
    scalar('float-nan', /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/, (text) =>
      text.slice(-3).toLowerCase() === 'nan' ? Number.NaN : text[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY,
    ),
    scalar('float-exp', /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/, (text) => parseFloat(text)),
    scalar('float', /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/, (text) => parseFloat(text)),
    // js-yaml recognizes a merge key by this exact tag; a plain `<<` gets it (as yaml@2's `merge: true`).
    new Type(MERGE, {kind: 'scalar', resolve: (text: string | null) => text === '<<'}),
  ],
  explicit: [],
})

/**
 * Text that js-yaml and yaml@2 may read differently, or that only yaml@2 rejects (most found by
 * fuzzing one against the other):
 * - tabs (yaml@2 has its own rules), control characters, line breaks other than LF/CRLF, a BOM past the start;
 * - directives (`%YAML 1.1` changes yaml@2's schema), document markers (a leading `---` is stripped), `!!merge`;
 * - explicit `?` keys, flow collections as keys, aliases where a flow map has its keys (names differ);
 * - a `#` glued to a quote, bracket or comma (a comment for js-yaml, an error for yaml@2);
 * - an anchor followed by `x: y` on its line (a compact mapping), glued to a flow indicator (`&a{`) or
 *   starting a line (two anchors on one node), and empty `-` entries (js-yaml then takes any indentation);
 * - lines of 1000+ characters (yaml@2 limits implicit keys to 1024).
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const UNSURE = /[\t\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u0085\u2028\u2029\ufeff]|\r(?!\n)|^%|(?:^|[\s[{,])\?(?:\s|$)|[\]}][ ]*:|^(?:---|\.\.\.)(?:\s|$)|["'[\]{},]#|&[^\s[\]{},]+[ ]+[^\s[{][^\n]*:(?:\s|$)|!!merge|yaml\.org,2002:merge|[{,]\s*\*|&[^\s[\]{},]*[[\]{},]|^[ ]*&|^[ -]*-[ ]*(?:#[^\n]*)?\r?$|^[^\n]{1000}/m

/**
 * Upper bound on aliases for the fast path: yaml@2 refuses documents whose alias expansions
 * exceed 1000 (count × nested count, merges re-expand), which no document with this many `*`
 * reaches: a search over alias and merge structures finds at most 2^n (64 for 6 aliases).
 */
const MAX_ALIASES = 6

export interface QuickLoad {
  data: unknown
}

/** The document as plain data, or undefined when yaml@2 must decide (see above). `source` has no BOM. */
export function quickLoad(source: string): QuickLoad | undefined {
  const body = source.startsWith('---\n') || source.startsWith('---\r\n') ? source.slice(source.indexOf('\n') + 1) : source
  if (UNSURE.test(body)) return undefined
  let stars = 0
  for (let i = body.indexOf('*'); i !== -1 && stars <= MAX_ALIASES; i = body.indexOf('*', i + 1)) stars++
  if (stars > MAX_ALIASES) return undefined

  // Collections js-yaml built; each must end up in the data (not as a key or an inline merge source).
  const collections: object[] = []
  const closed = new Set<object>()
  let unsure = false
  let mergeValue = false
  let data: unknown
  try {
    data = load(body, {
      schema: CORE,
      onWarning: () => {
        unsure = true
      },
      listener(event, state) {
        if (event !== 'close') return
        // The value after a `<<` key must be an alias to a map: js-yaml also merges lists (even empty ones), yaml@2 refuses them.
        if (mergeValue) {
          mergeValue = false
          if (!(state.kind === null && typeof state.result === 'object' && state.result !== null && !Array.isArray(state.result))) unsure = true
        }
        if ((state as typeof state & {tag: string | null}).tag === MERGE) mergeValue = true
        // `!` (non-specific tag) keeps a scalar a string in js-yaml; leave such details to yaml@2.
        if ((state as typeof state & {tag: string | null}).tag === '!') unsure = true
        // An alias (no kind of its own) followed by ":" is a key: js-yaml names a list key "a,b", yaml@2 "[ a, b ]".
        if (state.kind === null && state.input.charCodeAt(state.position) === 0x3a) unsure = true
        const result: unknown = state.result
        if (result === null || typeof result !== 'object') return
        if (state.kind === 'mapping' || state.kind === 'sequence') {
          collections.push(result)
          closed.add(result)
        } else if (!closed.has(result)) {
          // An alias to a collection still being built (`&a {<<: *a}`): js-yaml links it, yaml@2 refuses it.
          unsure = true
        }
      },
    })
  } catch {
    return undefined
  }
  // A document that is empty, a scalar or a list is a diagnostic anyway: yaml@2 words it.
  if (unsure || data === null || typeof data !== 'object' || Array.isArray(data) || !plainTree(data, collections)) return undefined
  return {data}
}

/**
 * Checks keys and reachability: a `null` key is "" in yaml@2 but "null" in js-yaml, so any "null"
 * key goes to yaml@2, as does a map used as a key; every collection js-yaml built must be reachable (else it was a key or an
 * inline merge source, which yaml@2 handles differently).
 */
function plainTree(root: unknown, built: readonly object[]): boolean {
  const seen = new Set<object>()
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const node = stack.pop()
    if (node === null || typeof node !== 'object' || seen.has(node)) continue
    seen.add(node)
    if (Array.isArray(node)) {
      for (const item of node) stack.push(item)
      continue
    }
    for (const key of Object.keys(node)) {
      if (key === 'null' || key === '[object Object]') return false
      stack.push((node as Record<string, unknown>)[key])
    }
  }
  return built.every((collection) => seen.has(collection))
}
