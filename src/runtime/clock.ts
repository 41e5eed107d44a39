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

/** `isoNow()`, or the earlier time an instance reported for an event (epoch ms: when it read a log line); never later than now. */
export function isoAt(ms?: number): string {
  if (ms === undefined) return isoNow()
  return Number.isFinite(ms) && ms >= 0 && ms < Date.now() ? new Date(ms).toISOString() : isoNow()
}
