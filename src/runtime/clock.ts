/**
 * `new Date().toISOString()` for the event path: events arrive by the thousand per millisecond
 * under load, and formatting a date each time showed in profiles. The string is reused within one ms.
 */
let cachedMs = Number.NaN
let cachedIso = ''

export function isoNow(): string {
  const ms = Date.now()
  if (ms !== cachedMs) {
    cachedMs = ms
    cachedIso = new Date(ms).toISOString()
  }
  return cachedIso
}
