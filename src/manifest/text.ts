/** Editors on Windows may save a byte-order mark; it is not part of the YAML and would shift columns on line 1. */
export function stripBom(source: string): string {
  return source.charCodeAt(0) === 0xfeff ? source.slice(1) : source
}
