/** Names a user picks for a new project: a kebab-case project name and an UPPER_SNAKE plugin signature. */

const PROJECT_NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/
const SIGNATURE = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/

/** Why `name` is not a valid project name, or undefined when it is. */
export function projectNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the project name is empty'
  if (name.length > 64) return `the project name "${name}" is longer than 64 characters`
  if (!PROJECT_NAME.test(name)) {
    const suggestion = toKebabCase(name)
    return `"${name}" is not kebab-case (lowercase letters and digits, words joined by "-", starting with a letter)` +
      (suggestion && PROJECT_NAME.test(suggestion) ? `; did you mean "${suggestion}"?` : '')
  }
  return undefined
}

/** Why `signature` is not a valid plugin signature, or undefined when it is. */
export function signatureProblem(signature: string): string | undefined {
  if (signature.length === 0) return 'the signature is empty'
  if (signature.length > 64) return `the signature "${signature}" is longer than 64 characters`
  if (!SIGNATURE.test(signature)) {
    const suggestion = toUpperSnakeCase(signature)
    return `"${signature}" is not UPPER_SNAKE (uppercase letters and digits, words joined by "_", starting with a letter)` +
      (suggestion && SIGNATURE.test(suggestion) ? `; did you mean "${suggestion}"?` : '')
  }
  return undefined
}

function words(text: string): string[] {
  return text
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
}

/** `My Sensor_v2` → `my-sensor-v2`. */
export function toKebabCase(text: string): string {
  return words(text).join('-').toLowerCase()
}

/** `my-sensor` → `MY_SENSOR`. */
export function toUpperSnakeCase(text: string): string {
  return words(text).join('_').toUpperCase()
}
