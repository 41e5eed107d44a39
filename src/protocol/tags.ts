import {z} from 'zod'
import {ExitCode, R1Error} from '../errors.js'
import {NAME_PATTERN} from './limits.js'

/**
 * Labels of a node (`site: north`): set on a target in config.yaml (`tags`) and announced by a node
 * started with `--tag site=north` (R1_TAGS in its heartbeats); `--tag site=north` selects by them.
 * Names and values have the format of every other name (letters, digits, `_ . -`).
 */
export const TagsSchema = z.record(z.string().regex(NAME_PATTERN), z.string().regex(NAME_PATTERN)).describe('Labels: name → value (letters, digits, _ . -; quote numbers: "3")')
export type Tags = z.infer<typeof TagsSchema>

/** `--tag name=value` flags as one set of labels; a malformed one is a usage error (exit 2). */
export function parseTags(values: readonly string[]): Tags {
  const tags: Tags = {}
  const bad = (message: string, hint: string) => new R1Error(message, ExitCode.USAGE, {code: 'BAD_TAG', hint})
  for (const value of values) {
    const eq = value.indexOf('=')
    const [name, tag] = [value.slice(0, eq), value.slice(eq + 1)]
    if (eq === -1 || !NAME_PATTERN.test(name) || !NAME_PATTERN.test(tag)) {
      throw bad(`--tag "${value}" is not name=value.`, 'e.g. --tag site=north (repeat --tag for several; names and values: letters, digits, _ . -, at most 200)')
    }
    if (Object.hasOwn(tags, name) && tags[name] !== tag) throw bad(`--tag ${name} is given twice with different values; a node carries one value per tag.`, `Keep one --tag ${name}=…`)
    tags[name] = tag
  }
  return tags
}
