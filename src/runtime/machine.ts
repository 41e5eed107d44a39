import {cpus, freemem, totalmem} from 'node:os'

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

/**
 * The machine's CPU times, read at most once per READING_TTL_MS per process: os.cpus() costs a
 * millisecond, and every node in one process (a test or a simulated fleet) asks on each heartbeat.
 * Memory figures likewise (`memory()`): each is a read of /proc.
 */
function cpuTimes(): {busy: number; total: number} {
  const now = performance.now()
  if (lastReading && now - lastReading.at < READING_TTL_MS) return lastReading.times
  let busy = 0
  let total = 0
  for (const cpu of cpus()) {
    const {user, nice, sys, idle, irq} = cpu.times
    busy += user + nice + sys + irq
    total += user + nice + sys + irq + idle
  }
  lastReading = {at: now, times: {busy, total}}
  return lastReading.times
}

export interface MemoryFigures {
  /** The machine's memory and what of it is available, bytes. */
  machine: number
  available: number
  /** This process's resident set, bytes (0 when it cannot be read). */
  process: number
}

/** Heartbeats' memory figures, read at most once per READING_TTL_MS per process. */
export function memory(): MemoryFigures {
  const now = performance.now()
  if (lastMemory && now - lastMemory.at < READING_TTL_MS) return lastMemory.figures
  let rss = 0
  try {
    rss = process.memoryUsage.rss()
  } catch {
    // unreadable (e.g. out of file descriptors): reported as 0
  }
  lastMemory = {at: now, figures: {machine: totalmem(), available: freemem(), process: rss}}
  return lastMemory.figures
}

const READING_TTL_MS = 200
let lastReading: {at: number; times: {busy: number; total: number}} | undefined
let lastMemory: {at: number; figures: MemoryFigures} | undefined
