import {LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node} from 'yaml'

/**
 * The one place that knows how YAML nodes map to line:col (STYLE.md: keep path→position code together).
 * yaml@2 is loaded only through here, and only when a diagnostic needs a position (validate.ts).
 */

export type PathSegment = string | number

export interface Position {
  line: number
  col: number
  /** Character offset in the source. */
  offset: number
}

export interface YamlProblem {
  code: string
  message: string
  position: Position
}

export interface ParsedYaml {
  source: string
  /** The document as plain data (undefined when the syntax is broken beyond duplicate keys). */
  data: unknown
  syntaxErrors: YamlProblem[]
  duplicateKeys: Array<YamlProblem & {path: PathSegment[]; key: string}>
  /** Position of the key (`at: 'key'`) or the value at `path`; the nearest existing ancestor when it is absent. */
  locate(path: readonly PathSegment[], at?: 'key' | 'value'): Position
}

export {stripBom} from './text.js'

export function parseYaml(source: string): ParsedYaml {
  const lineCounter = new LineCounter()
  // logLevel 'error': yaml@2 would print its own Node warnings (e.g. collection keys); r1's rules report those cases
  const doc = parseDocument(source, {lineCounter, uniqueKeys: true, prettyErrors: false, merge: true, keepSourceTokens: false, logLevel: 'error'})
  const position = (offset: number): Position => {
    const {line, col} = lineCounter.linePos(offset)
    return {line, col, offset}
  }

  const syntaxErrors: YamlProblem[] = []
  const duplicateKeys: ParsedYaml['duplicateKeys'] = []
  for (const error of doc.errors) {
    if (error.code === 'DUPLICATE_KEY') {
      const found = findKeyAt(doc, error.pos[0])
      duplicateKeys.push({
        code: error.code,
        message: error.message,
        position: position(error.pos[0]),
        path: found?.path ?? [],
        key: found?.key ?? source.slice(error.pos[0], error.pos[1]),
      })
    } else {
      const message = error.code === 'MULTIPLE_DOCS' ? 'config.yaml must hold a single YAML document: remove the second "---" and what follows' : firstLine(error.message)
      syntaxErrors.push({code: error.code, message, position: position(error.pos[0])})
    }
  }

  let data: unknown
  if (syntaxErrors.length === 0) {
    try {
      data = doc.toJS({maxAliasCount: 1000})
    } catch (error) {
      // toJS refuses alias bombs ("billion laughs") and bad merges (`<<: 1`): report them, never crash.
      const message = (error as Error).message
      const merge = /merge/i.test(message) ? findBadMerge(doc, doc.contents) : undefined
      const hint = /alias count/i.test(message) ? ' (more than 1000 alias expansions)' : ''
      syntaxErrors.push({code: merge === undefined ? 'TO_JS' : 'BAD_MERGE', message: message + hint, position: position(merge ?? rangeStart(doc.contents) ?? 0)})
    }
  }

  const locate = (path: readonly PathSegment[], at: 'key' | 'value' = 'value'): Position => {
    let node: unknown = doc.contents
    let keyOffset: number | undefined
    for (let i = 0; i < path.length; i++) {
      const next = child(node, path[i])
      if (!next) break
      node = next.value
      keyOffset = next.keyOffset
      if (i === path.length - 1) {
        if (at === 'key' && keyOffset !== undefined) return position(keyOffset)
        const start = rangeStart(node)
        if (start !== undefined) return position(start)
        if (keyOffset !== undefined) return position(keyOffset)
      }
    }
    // Path not (fully) present: point at the deepest existing key, or its value when it has no key.
    if (keyOffset !== undefined) return position(keyOffset)
    const start = rangeStart(node)
    return position(start ?? 0)
  }

  return {source, data, syntaxErrors, duplicateKeys, locate}
}

function child(node: unknown, segment: PathSegment): {value: unknown; keyOffset?: number} | undefined {
  if (isMap(node)) {
    // The last pair wins, as in toJS(), when a key is duplicated.
    let found: {value: unknown; keyOffset?: number} | undefined
    for (const pair of node.items) {
      if (!isPair(pair)) continue
      if (keyText(pair.key) === String(segment)) found = {value: pair.value, keyOffset: rangeStart(pair.key)}
    }
    return found
  }
  if (isSeq(node) && typeof segment === 'number') {
    const item = node.items[segment]
    return item === undefined ? undefined : {value: item}
  }
  return undefined
}

/** A map key as toJS() names it; complex keys (maps, lists, merges) are never a manifest path segment. */
function keyText(key: unknown): string {
  if (isScalar(key)) return String(key.value)
  return key === null || key === undefined ? '' : '\u0000complex'
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range
  return Array.isArray(range) ? range[0] : undefined
}

/** Offset of the first `<<` whose value is neither a map, an alias of one, nor a list of those. */
function findBadMerge(doc: Document, node: unknown): number | undefined {
  const mapLike = (item: unknown) => isMap(item) || (isAlias(item) && isMap(item.resolve(doc)))
  if (isMap(node)) {
    for (const pair of node.items) {
      if (isScalar(pair.key) && pair.key.source === '<<') {
        const value = pair.value
        const ok = mapLike(value) || (isSeq(value) && value.items.every(mapLike))
        if (!ok) return rangeStart(pair.key)
      }
      const inner = findBadMerge(doc, pair.value)
      if (inner !== undefined) return inner
    }
  } else if (isSeq(node)) {
    for (const item of node.items) {
      const inner = findBadMerge(doc, item)
      if (inner !== undefined) return inner
    }
  }
  return undefined
}

/** Finds which map key starts at `offset` (duplicate-key errors carry only an offset). */
function findKeyAt(doc: Document, offset: number): {path: PathSegment[]; key: string} | undefined {
  const walk = (node: unknown, path: PathSegment[]): {path: PathSegment[]; key: string} | undefined => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        const key = keyText(pair.key)
        if (rangeStart(pair.key) === offset) return {path, key}
        const found = walk(pair.value, [...path, key])
        if (found) return found
      }
    } else if (isSeq(node)) {
      for (let i = 0; i < node.items.length; i++) {
        const found = walk(node.items[i], [...path, i])
        if (found) return found
      }
    }
    return undefined
  }
  return walk(doc.contents, [])
}

function firstLine(message: string): string {
  return message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
}
