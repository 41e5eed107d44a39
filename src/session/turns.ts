/**
 * Commands signed (and sealed) per turn of the event loop, by every session of this process together.
 *
 * A fleet command starts a thousand sessions at once, and each signs its first command as soon as the
 * shared broker connection is up: in one turn, a second or more of CPU before the first byte leaves
 * (what is written in a turn goes out at its end). Taking them a batch per turn sends each batch while
 * the next is signed, so the nodes start answering early, and replies are read in between.
 */
export const SIGNED_PER_TURN = 32

let signedThisTurn = 0
let turnScheduled = false
const waiting: Array<() => void> = []

/** Resolves when this caller may sign: at once while the turn's batch has room, else in a later turn (first come, first served). */
export function signingTurn(): Promise<void> | undefined {
  if (!turnScheduled) {
    turnScheduled = true
    setImmediate(nextTurn)
  }
  if (waiting.length === 0 && signedThisTurn < SIGNED_PER_TURN) {
    signedThisTurn++
    return undefined
  }
  return new Promise((resolve) => waiting.push(resolve))
}

function nextTurn(): void {
  const batch = waiting.splice(0, SIGNED_PER_TURN)
  signedThisTurn = batch.length
  for (const resolve of batch) resolve()
  // a turn that let nobody wait ends the schedule; the next signer starts it again
  turnScheduled = batch.length > 0
  if (turnScheduled) setImmediate(nextTurn)
}
