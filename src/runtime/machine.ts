import {cpus, freemem, totalmem} from 'node:os'

/**
 * What heartbeats report of the machine, each figure read at most once per READING_TTL_MS per process:
 * os.cpus() costs a millisecond and each memory figure is a read of /proc, and every node in one process
 * (a test or a simulated fleet) asks on each heartbeat.
 */
const READING_TTL_MS = 200

/** `read`, called again only once its last value is READING_TTL_MS old. */
function throttled<T>(read: () => T): () => T {
  let last: {at: number; value: T} | undefined
  return () => {
    const now = performance.now()
    if (!last || now - last.at >= READING_TTL_MS) last = {at: now, value: read()}
    return last.value
  }
}

/** The machine's CPU use between two readings, in percent (one decimal): what heartbeats report as CPU_USED. */
export class CpuMeter {
  private sample = cpuTimes()

  /** Percent busy since the previous call (or since construction). */
  percent(): number {
    const now = cpuTimes()
    const busy = now.busy - this.sample.busy
    const total = now.total - this.sample.total
    this.sample = now
    return total > 0 ? Math.round((busy / total) * 1000) / 10 : 0
  }
}

/** The machine's CPU times, summed over its cores. */
const cpuTimes = throttled((): {busy: number; total: number} => {
  let busy = 0
  let total = 0
  for (const cpu of cpus()) {
    const {user, nice, sys, idle, irq} = cpu.times
    busy += user + nice + sys + irq
    total += user + nice + sys + irq + idle
  }
  return {busy, total}
})

export interface MemoryFigures {
  /** The machine's memory and what of it is available, bytes. */
  machine: number
  available: number
  /** This process's resident set, bytes (0 when it cannot be read). */
  process: number
}

/** Heartbeats' memory figures. */
export const memory = throttled((): MemoryFigures => {
  let rss = 0
  try {
    rss = process.memoryUsage.rss()
  } catch {
    // unreadable (e.g. out of file descriptors): reported as 0
  }
  return {machine: totalmem(), available: freemem(), process: rss}
})
