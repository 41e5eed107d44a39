import {cpus} from 'node:os'

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

const READING_TTL_MS = 200
let lastReading: {at: number; times: {busy: number; total: number}} | undefined
