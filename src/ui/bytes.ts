const UNITS = ['KiB', 'MiB', 'GiB', 'TiB']

/** A byte count for people: `512 B`, `1.5 KiB`, `300 KiB`, `4 MiB`, `2.3 GiB` (one decimal below 100 of a unit, none when it is 0). */
export function formatBytes(bytes: number): string {
  if (Math.abs(bytes) < 1024) return `${bytes} B`
  let value = bytes / 1024
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  const shown = Math.abs(value) < 100 ? Number(value.toFixed(1)) : Math.round(value)
  return `${shown} ${UNITS[unit]}`
}
