const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/**
 * A byte count for people: `512 B`, `1.5 KiB`, `300 KiB`, `4 MiB`, `2.3 GiB` (one decimal below 100 of a
 * unit, none when it is 0); `-` when there is no count (undefined, or not a finite number).
 */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return '-'
  let unit = 0
  let shown = bytes
  // the unit after rounding: 1023.99 KiB reads 1 MiB
  while (unit < UNITS.length - 1 && Math.abs(shown) >= 1024) {
    unit++
    const value = bytes / 1024 ** unit
    shown = Math.abs(value) < 100 ? Number(value.toFixed(1)) : Math.round(value)
  }
  return `${shown} ${UNITS[unit]}`
}
