/**
 * Whether `text` is standard base64 (`A–Z a–z 0–9 + /`, at most two `=` at the end; padding optional), and the
 * one encoding of what it decodes to. Decoding and encoding again is native: a bundle chunk is checked in a
 * tenth of the time a regular expression takes over it.
 */
export function isStandardBase64(text: string): boolean {
  return fromStandardBase64(text) !== undefined
}

/** The bytes `text` encodes when it is standard base64 (see isStandardBase64), else undefined: checked and decoded in one pass. */
export function fromStandardBase64(text: string): Buffer | undefined {
  const end = unpaddedLength(text)
  if (text.length - end > 2) return undefined
  const bytes = Buffer.from(text, 'base64')
  const again = bytes.toString('base64')
  const againEnd = unpaddedLength(again)
  return againEnd === end && again.slice(0, againEnd) === text.slice(0, end) ? bytes : undefined
}

function unpaddedLength(text: string): number {
  let end = text.length
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d) end-- // '='
  return end
}
