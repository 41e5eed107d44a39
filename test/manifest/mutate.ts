/** Seeded manifest mutations shared by the robustness and fast-path tests (same seed, same variants). */

export function rng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** 1–3 edits: insert one of `pieces`, delete a few characters, or duplicate/swap lines. */
export function mutate(source: string, random: () => number, pieces: readonly string[]): string {
  let text = source
  const edits = 1 + Math.floor(random() * 3)
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * (text.length + 1))
    const kind = random()
    if (kind < 0.35) text = text.slice(0, at) + pieces[Math.floor(random() * pieces.length)] + text.slice(at)
    else if (kind < 0.6) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 8))
    else {
      const lines = text.split('\n')
      const i = Math.floor(random() * lines.length)
      const j = Math.floor(random() * lines.length)
      if (kind < 0.8) lines.splice(j, 0, lines[i])
      else [lines[i], lines[j]] = [lines[j], lines[i]]
      text = lines.join('\n')
    }
  }
  return text
}
